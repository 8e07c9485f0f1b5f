"""What every stage entry point shares: logging set-up and the params file option."""
from __future__ import annotations

import argparse
import logging
import os


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with `--params` (default params.yaml) and `--quiet`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def setup_logging() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))
