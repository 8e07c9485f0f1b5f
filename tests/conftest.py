"""Shared fixtures: every test builds its own tiny data under tmp_path; nothing touches the network."""
from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet_libraries():
    logging.getLogger("numba").setLevel(logging.WARNING)
    yield


@pytest.fixture(autouse=True, scope="session")
def _stage_timings_outside_the_repository(tmp_path_factory):
    """Stage entry points run by the tests (in-process or as subprocesses) write their timing files to a temporary
    folder, never into the repository's data/timings/stages."""
    import os

    previous = os.environ.get("PIPELINE_TIMINGS")
    os.environ["PIPELINE_TIMINGS"] = str(tmp_path_factory.mktemp("stage-timings"))
    yield
    if previous is None:
        os.environ.pop("PIPELINE_TIMINGS", None)
    else:
        os.environ["PIPELINE_TIMINGS"] = previous
