"""Training reports: dvclive curves and summary that read back as written, byte-identical on a rerun, with the
wall-clock figures only in the timing file; the summary table and curves page over every variant."""
from __future__ import annotations

import json

import pytest

from pipeline.reports.training import (read_curves, read_summary, summarise_training, write_timing,
                                       write_variant_reports)

CURVE = [{"step": 3 * (i + 1), "epoch": i, "train_loss": 10.0 / (i + 1) + 1e-9, "valid_loss": 9.0 / (i + 1),
          "valid_reconstruction": 8.5 / (i + 1), "valid_kl": 0.1, "valid_classification": 0.4,
          "seconds": 1.25 * (i + 1)} for i in range(4)]
SUMMARY = {"best_step": 12, "best_valid_reconstruction": 2.125, "steps": 12, "epochs": 4.0,
           "stopped_by": "max_steps", "device": "cpu", "parameters": 100}


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_variant_reports_read_back_and_are_identical_on_a_rerun(tmp_path):
    folder = write_variant_reports("v", CURVE, SUMMARY, tmp_path / "a")
    assert folder == tmp_path / "a" / "v"
    assert sorted(_tree(tmp_path / "a")) == ["v.png", "v/metrics.json"] + [f"v/plots/metrics/{name}.tsv" for name in (
        "epoch", "train_loss", "valid_classification", "valid_kl", "valid_loss", "valid_reconstruction")]
    assert (folder / "plots" / "metrics" / "valid_loss.tsv").read_text().splitlines() == \
        ["step\tvalid_loss", "3\t9.0", "6\t4.5", "9\t3.0", "12\t2.25"]
    summary = read_summary(tmp_path / "a", "v")
    assert {k: summary[k] for k in SUMMARY} == SUMMARY and summary["step"] == 12 and summary["train_loss"] == 2.5
    (curve,) = read_curves(tmp_path / "a").values()
    assert curve == [{k: float(round(v, 6)) for k, v in row.items() if k != "seconds"} for row in CURVE]
    write_variant_reports("v", CURVE, SUMMARY, tmp_path / "b")
    write_variant_reports("v", [{**row, "seconds": 99.0} for row in CURVE], SUMMARY, tmp_path / "b")  # rewritten
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_the_timing_file_holds_the_wall_clock_figures(tmp_path):
    path = write_timing("v", CURVE, {"train_seconds": 5.0, "mixtures_per_second": 19.2, "device": "cpu"},
                        tmp_path / "timings" / "train@v.json")
    timing = json.loads(path.read_text())
    assert timing["stage"] == "train@v" and timing["mixtures_per_second"] == 19.2
    assert timing["validations"] == [{"step": row["step"], "seconds": row["seconds"]} for row in CURVE]


def test_a_curve_without_its_columns_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"v: curve rows lack \['valid_loss'\]"):
        write_variant_reports("v", [{k: v for k, v in CURVE[0].items() if k != "valid_loss"}], SUMMARY, tmp_path)


def test_a_curve_without_the_vae_terms_is_logged_and_read_back(tmp_path):
    curve = [{k: v for k, v in row.items() if k not in ("valid_kl", "valid_classification")} for row in CURVE]
    folder = write_variant_reports("nmf", curve, SUMMARY, tmp_path)
    assert not (folder / "plots" / "metrics" / "valid_kl.tsv").exists()
    read = read_curves(tmp_path)["nmf"]
    assert [row["valid_loss"] for row in read] == pytest.approx([row["valid_loss"] for row in curve])


def test_summary_table_and_curves_page_cover_every_variant_without_timings(tmp_path):
    reports = tmp_path / "training"
    for name in ("b", "a"):
        write_variant_reports(name, CURVE, {**SUMMARY, "best_step": 9 if name == "a" else 12}, reports)
    text = summarise_training(reports, tmp_path / "summary.md", tmp_path / "curves.png")
    rows = [line for line in text.splitlines() if line.startswith("| a ") or line.startswith("| b ")]
    assert rows == ["| a | 9 | 12 | 4.0 | max_steps | 2.125 | cpu |", "| b | 12 | 12 | 4.0 | max_steps | 2.125 | cpu |"]
    assert "mixtures_per_second" not in text and (tmp_path / "summary.md").read_text() == text
    assert (tmp_path / "curves.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match="no training summaries"):
        summarise_training(tmp_path / "nothing", tmp_path / "s.md", tmp_path / "c.png")
    with pytest.raises(FileNotFoundError, match="variant 'x' has no training summary"):
        read_summary(reports, "x")
