"""Prints the bad-input matrix's outcomes in the terminal summary (shown whatever `-s`/capture settings)."""
from __future__ import annotations

OUTCOMES: list[tuple[str, str]] = []  # (case, what it got), appended by tests/reliability/test_bad_input.py


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not OUTCOMES:
        return
    terminalreporter.write_sep("=", f"bad-input matrix: {len(OUTCOMES)} cases")
    for case, outcome in OUTCOMES:
        terminalreporter.write_line(f"{case}: {outcome}")
