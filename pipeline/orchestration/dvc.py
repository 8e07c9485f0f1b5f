"""DVC and git commands for the `rebuild` flow, one at a time, and the Markdown summary of what changed.

Two `dvc` commands in one workspace fail on DVC's lock, so every call here holds an exclusive file lock
(`.dvc/tmp/orchestration.lock`) for its whole duration: calls from several flow runs, threads or processes on
this machine queue instead of failing.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

log = logging.getLogger(__name__)

LOCK_FILE = Path(".dvc") / "tmp" / "orchestration.lock"


class CommandError(RuntimeError):
    """A git or dvc command failed; the message holds the command and the end of its output."""


@contextmanager
def dvc_lock(repo: str | Path) -> Iterator[None]:
    """Hold the workspace's orchestration lock (blocks until other holders are done)."""
    path = Path(repo) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(command: Sequence[str], repo: str | Path, *, timeout: float | None = None, stdout_only: bool = False) -> str:
    """Run `command` in `repo` (this interpreter's folder first on PATH); its stdout + stderr (or stdout only),
    or CommandError with the end of its output."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log.info("$ %s", " ".join(command))
    done = subprocess.run(list(command), cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise CommandError(f"{' '.join(command)} failed with exit code {done.returncode}:\n{output[-4000:]}")
    return done.stdout if stdout_only else output


def dvc(repo: str | Path, *args: str, timeout: float | None = None, stdout_only: bool = False) -> str:
    """`dvc <args>` (this environment's DVC) in `repo`, serialised with every other call through `dvc_lock`."""
    with dvc_lock(repo):
        return run([sys.executable, "-m", "dvc", *args], repo, timeout=timeout, stdout_only=stdout_only)


def git(repo: str | Path, *args: str) -> str:
    return run(["git", *args], repo)


def head(repo: str | Path) -> str:
    """The commit checked out in `repo`."""
    return git(repo, "rev-parse", "HEAD").strip()


def ran_stages(repro_output: str) -> list[str]:
    """Stages a `dvc repro` output says it ran, in order."""
    return [line.split("'")[1] for line in repro_output.splitlines()
            if line.startswith("Running stage '") and line.count("'") >= 2]


def metrics_diff(repo: str | Path, rev: str) -> dict[str, dict[str, dict[str, Any]]]:
    """`dvc metrics diff <rev> --json`: file -> metric -> {old, new, diff}, changed metrics only."""
    output = dvc(repo, "metrics", "diff", rev, "--json", stdout_only=True).strip()
    return json.loads(output) if output else {}


def summary_markdown(diff: dict[str, dict[str, dict[str, Any]]], *, rev_before: str, rev_after: str,
                     stages: Sequence[str], steps: Sequence[str]) -> str:
    """The rebuild's summary: what ran, and every changed metric (old, new, change) as a Markdown table."""
    lines = ["# Rebuild", "",
             f"- steps: {', '.join(steps)}",
             f"- commit before: `{rev_before[:12]}`; after: `{rev_after[:12]}`",
             f"- stages run ({len(stages)}): {', '.join(f'`{s}`' for s in stages) if stages else 'none (up to date)'}",
             "", f"## Metrics changed since `{rev_before[:12]}` (`dvc metrics diff`)", ""]
    rows = [(path, metric, change) for path, metrics in sorted(diff.items())
            for metric, change in sorted(metrics.items())]
    if not rows:
        lines.append("No metric changed.")
        return "\n".join(lines) + "\n"
    lines += ["| file | metric | old | new | change |", "|---|---|---|---|---|"]
    for path, metric, change in rows:
        lines.append(f"| {path} | {metric} | {_cell(change.get('old'))} | {_cell(change.get('new'))} | "
                     f"{_cell(change.get('diff'))} |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")
