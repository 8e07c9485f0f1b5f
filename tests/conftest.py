"""Shared fixtures: every test builds its own tiny data under tmp_path; nothing touches the network."""
from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet_libraries():
    logging.getLogger("numba").setLevel(logging.WARNING)
    yield
