"""The `orchestration` section of params.yaml: task runner, workers, Dask scheduler, training processes, rebuild.

It changes how a stage runs, never what it writes (outputs are byte-identical whichever runner built them), so
no DVC stage depends on it. Every key is optional; a params file without the section gets the defaults.
"""
from __future__ import annotations

import logging
import os
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any, Mapping

import yaml

from pipeline.config import Bool, ConfigError, Int, Section, Str, one_of, rule, section, validate_section

log = logging.getLogger(__name__)

TASK_RUNNERS = ("threads", "processes")
PREFECT_MODES = ("auto", "always", "never")
PREFECT_ENV = "PIPELINE_PREFECT"  # auto (flows when a Prefect API is configured) | always | never


Cron = Annotated[Str, rule(lambda v: len(v.split()) in (5, 6), "a cron expression such as '0 3 * * *'")]
Workers = Annotated[Int, rule(lambda v: v >= 0, "0 (one per core) or a positive number")]
Processes = Annotated[Int, rule(lambda v: v >= 1, "a positive number")]


@section
class RebuildSettings(Section):
    """The scheduled `rebuild` deployment: when it runs and which optional steps it takes."""

    cron: Cron = "0 3 * * *"
    timezone: Str = "UTC"
    git_pull: Bool = False
    dvc_pull: Bool = False
    dvc_push: Bool = False
    remote: Str | None = None      # DVC remote for pull/push; None: the default remote


@section
class OrchestrationSettings(Section):
    task_runner: Annotated[Str, one_of(*TASK_RUNNERS)] = "processes"  # where the tasks of a stage run locally
    workers: Workers = 0                    # parallel tasks; 0: one per CPU core this process may use
    scheduler_address: Str | None = None    # a Dask scheduler (tcp://host:8786): tasks run on that cluster
    train_processes: Processes = 1          # >1: train with torchrun + DistributedDataParallel (one per GPU)
    rebuild: RebuildSettings = RebuildSettings()

    @property
    def resolved_workers(self) -> int:
        return self.workers or cpu_count()


def cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def parse_orchestration(raw: Mapping[str, Any] | None) -> OrchestrationSettings:
    """Validate the `orchestration` mapping (None: defaults); errors name the dotted key."""
    return validate_section(OrchestrationSettings, {} if raw is None else raw, "orchestration")


def load_orchestration(params_path: str | Path = "params.yaml") -> OrchestrationSettings:
    """The `orchestration` section of a params file (defaults when the file or the section is absent)."""
    path = Path(params_path)
    raw = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    return parse_orchestration(raw.get("orchestration"))


def prefect_api_url() -> str | None:
    """The Prefect API this process would report to: `PREFECT_API_URL`, else the active profile's setting.

    Read without importing Prefect (importing it costs about 3 s): the environment first, then
    `$PREFECT_HOME/profiles.toml` (default `~/.prefect`), profile `$PREFECT_PROFILE` or the file's `active`.
    """
    url = os.environ.get("PREFECT_API_URL")
    if url is not None:
        return url or None
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    name = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    return (profiles.get("profiles", {}).get(name, {}) or {}).get("PREFECT_API_URL") or None


def use_prefect() -> bool:
    """Whether a stage runs as a Prefect flow. `PIPELINE_PREFECT=auto` (default): when an API is configured and
    answers (a configured but stopped server gives a warning and a plain run, not a failed stage).

    `always` runs flows even without a server (Prefect then starts a temporary server in every stage process:
    measured 17-27 s per stage on a 2-core machine); `never` never imports Prefect.
    """
    mode = os.environ.get(PREFECT_ENV, "auto").strip().lower() or "auto"
    if mode not in PREFECT_MODES:
        raise ConfigError(f"{PREFECT_ENV}: got {mode!r}, expected one of {PREFECT_MODES}")
    if mode != "auto":
        return mode == "always"
    url = prefect_api_url()
    if url is None:
        return False
    if not api_reachable(url):
        log.warning("Prefect API %s does not answer; running without Prefect (start it with `prefect server "
                    "start`, or unset PREFECT_API_URL)", url)
        return False
    return True


def api_reachable(url: str, timeout_s: float = 3.0) -> bool:
    """Whether anything answers HTTP at `<url>/health` (any status counts: Prefect Cloud wants a key)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False
