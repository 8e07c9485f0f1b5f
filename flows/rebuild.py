"""Flow `rebuild`: git pull (optional) -> dvc pull (optional) -> dvc repro -> dvc push (optional), then what
changed (`dvc metrics diff` against the commit checked out before the run) as a Markdown artifact.

DVC calls run one at a time: each step waits for the previous one, and every call holds the workspace's
orchestration lock (`pipeline.orchestration.dvc`), so overlapping runs queue instead of failing on DVC's lock.
Stages that `dvc repro` runs report their own flow runs when a Prefect API is configured (tag `dvc-stage`).
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipeline.orchestration import dvc

ARTIFACT_KEY = "rebuild-metrics-diff"


@task(name="git", cache_policy=NO_CACHE, persist_result=False)
def git_task(repo: str, args: list[str]) -> str:
    return dvc.git(repo, *args)


@task(name="dvc", cache_policy=NO_CACHE, persist_result=False)
def dvc_task(repo: str, args: list[str]) -> str:
    return dvc.dvc(repo, *args)


@task(name="metrics-diff", cache_policy=NO_CACHE, persist_result=False)
def metrics_diff_task(repo: str, rev: str) -> dict:
    return dvc.metrics_diff(repo, rev)


def _remote(remote: str | None) -> list[str]:
    return ["--remote", remote] if remote else []


@flow(name="rebuild", flow_run_name="rebuild")
def rebuild(repo: str = ".", git_pull: bool = False, dvc_pull: bool = False, dvc_push: bool = False,
            remote: str | None = None, targets: list[str] | None = None, against: str | None = None) -> str:
    """Bring the workspace up to date and report the metrics that changed; returns the Markdown summary.

    `against`: the revision to compare with (default: the commit checked out before `git pull`).
    """
    logger = get_run_logger()
    repo = str(Path(repo).resolve())
    before = git_task.with_options(task_run_name="git rev-parse")(repo, ["rev-parse", "HEAD"]).strip()
    steps = []
    if git_pull:
        git_task.with_options(task_run_name="git pull")(repo, ["pull", "--ff-only"])
        steps.append("git pull")
    if dvc_pull:
        dvc_task.with_options(task_run_name="dvc pull")(repo, ["pull", "--allow-missing", *_remote(remote)])
        steps.append("dvc pull")
    output = dvc_task.with_options(task_run_name="dvc repro")(repo, ["repro", *(targets or [])])
    steps.append("dvc repro")
    stages = dvc.ran_stages(output)
    logger.info("dvc repro ran %d stages: %s", len(stages), ", ".join(stages) or "none")
    if dvc_push:
        dvc_task.with_options(task_run_name="dvc push")(repo, ["push", *_remote(remote)])
        steps.append("dvc push")
    after = git_task.with_options(task_run_name="git rev-parse")(repo, ["rev-parse", "HEAD"]).strip()
    diff = metrics_diff_task.with_options(task_run_name=f"dvc metrics diff {(against or before)[:12]}")(
        repo, against or before)
    markdown = dvc.summary_markdown(diff, rev_before=against or before, rev_after=after, stages=stages, steps=steps)
    create_markdown_artifact(markdown=markdown, key=ARTIFACT_KEY,
                             description=f"dvc metrics diff {(against or before)[:12]} -> workspace")
    return markdown


FLOW = rebuild
