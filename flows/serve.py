"""Serve the scheduled `rebuild` deployment (cron and options from params.yaml `orchestration.rebuild`).

    prefect server start                       # terminal 1: the API and UI (http://127.0.0.1:4200)
    ./run.sh python -m flows.serve             # terminal 2: registers `rebuild/scheduled` and runs its runs

Runs while this process runs (Ctrl-C stops it; the deployment stays registered). A run started from the UI
(`Run` on the deployment) uses the same parameters unless you change them there.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from prefect import serve
from prefect.schedules import Cron

from flows.rebuild import rebuild
from pipeline.orchestration.settings import load_orchestration

DEPLOYMENT = "scheduled"


def deployment(params: str | Path = "params.yaml", repo: str | Path = ".", name: str = DEPLOYMENT):
    """The `rebuild` deployment: schedule and parameters from `orchestration.rebuild` in `params`."""
    settings = load_orchestration(params).rebuild
    return rebuild.to_deployment(
        name=name,
        schedules=[Cron(settings.cron, timezone=settings.timezone)],
        parameters={"repo": str(Path(repo).resolve()), "git_pull": settings.git_pull, "dvc_pull": settings.dvc_pull,
                    "dvc_push": settings.dvc_push, "remote": settings.remote},
        concurrency_limit=1,  # one rebuild at a time (DVC calls are serialised anyway)
        tags=["dvc"],
        description="git pull -> dvc pull -> dvc repro -> dvc push; metrics diff as an artifact",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file with `orchestration.rebuild`")
    parser.add_argument("--repo", default=".", help="the DVC workspace to rebuild (default: here)")
    parser.add_argument("--name", default=DEPLOYMENT, help="deployment name (default: scheduled)")
    ns = parser.parse_args(argv)
    serve(deployment(ns.params, ns.repo, ns.name))


if __name__ == "__main__":
    main()
