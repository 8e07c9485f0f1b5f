"""Prefect state of these tests lives in a temporary PREFECT_HOME (set before Prefect is imported), never in
~/.prefect or the project's .prefect; no telemetry leaves the machine."""
from __future__ import annotations

import os
import tempfile

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = "pipeline"
os.environ.pop("PREFECT_API_URL", None)
