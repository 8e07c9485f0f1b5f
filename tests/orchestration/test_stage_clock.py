"""Stage timings: written on success only, outside the outputs, and read back by benchmarks/bench_demo."""
from __future__ import annotations

import json

import pytest

from benchmarks.bench_demo import print_table, read_timings
from stages.common import stage_clock


def test_a_successful_stage_writes_its_timing_and_a_failed_one_does_not(tmp_path, capsys):
    with stage_clock("evaluate@d1", tmp_path):
        pass
    with pytest.raises(RuntimeError), stage_clock("evaluate@d2", tmp_path):
        raise RuntimeError("boom")
    timing = json.loads((tmp_path / "evaluate@d1.json").read_text())
    assert timing["stage"] == "evaluate@d1" and timing["seconds"] >= 0 and timing["cores"] >= 1
    assert not (tmp_path / "evaluate@d2.json").exists()

    with stage_clock("train@d1-source-vae", tmp_path):
        pass
    print_table(read_timings(tmp_path), wall=12.0)
    out = capsys.readouterr().out
    assert out.index("train") < out.index("evaluate")  # pipeline order, not alphabetical
    assert "within the 15-minute budget" in out


def test_torchrun_ranks_write_no_timing(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with stage_clock("train@x", tmp_path):
        pass
    assert not list(tmp_path.iterdir())
