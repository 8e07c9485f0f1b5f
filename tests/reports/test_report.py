"""The report stage on synthetic evaluations: merged metrics, figures, paper comparison, a page that renders."""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.reports import html as H
from pipeline.reports.figures import MIXTURE, Row, axis_limits, log_spectrogram, system_label, violin_figure
from pipeline.reports.paper import paired_median_gain
from pipeline.reports.site import build_report, demo_systems
from tests.reports.conftest import report_params

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("fig3_d1_bss_eval.png", "fig5_d4_si_snri.png", "fig6_d3_pesq.png")


def _summary(path: Path) -> Path:
    path.write_text("# Training summary\n\nOne row per trained variant.\n\n| variant | best_step | device |\n"
                    "|---|---|---|\n| d1-source-vae | 80 | cpu |\n| d1-class-vae <x> | 40 | cpu |\n")
    return path


@pytest.fixture(scope="module")
def report(fake_evaluation, tmp_path_factory):
    """The report built twice from the same inputs into two folders; returns (params, evaluation, out1, out2)."""
    params, evaluation = fake_evaluation
    outs = []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp(name)
        build_report(params, evaluation, out, training_summary=_summary(out / "training_summary.md"))
        outs.append(out)
    return params, evaluation, outs[0], outs[1]


def test_metrics_are_every_dataset_merged_and_sorted(report):
    _, evaluation, out, _ = report
    text = (out / "metrics.json").read_text()
    merged = json.loads(text)
    expected = {}
    for dataset in ("d1", "d3", "d4"):
        expected.update(json.loads((evaluation / dataset / "metrics.json").read_text()))
    assert merged == expected and list(merged) == sorted(merged)
    assert text == json.dumps(expected, indent=2, sort_keys=True) + "\n"
    assert merged["d1.class-vae.forward.oracle.n_failed"] > 0  # the failures are counted, not hidden


def test_figures_are_pngs_and_a_missing_dataset_is_skipped(fake_evaluation, tmp_path, caplog):
    params, evaluation = fake_evaluation
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "fig4_d2_bss_eval.png").write_bytes(b"stale")
    with caplog.at_level(logging.WARNING, logger="pipeline.reports.site"):
        written = build_report(params, evaluation, tmp_path, datasets=["d1", "d2", "d3", "d4"])
    for name in FIGURES:
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        assert written[name.removesuffix(".png")] == tmp_path / "plots" / name
    assert not (tmp_path / "plots" / "fig4_d2_bss_eval.png").exists()
    assert "skipping fig4_d2_bss_eval.png" in caplog.text


def test_paper_comparison_states_the_profile_and_our_numbers(report):
    _, _, out, _ = report
    markdown = (out / "paper_comparison.md").read_text()
    assert "profile demo: synthetic demo corpus — not a reproduction" in markdown
    assert "| D4: best training loss by SI-SNRi | wave-snr |" in markdown
    assert "d3.source-vae.forward.oracle.pesq_median" in markdown
    assert "d2 not evaluated" in markdown  # d2 is missing from the synthetic evaluation
    # the DRNN baseline's claims (seed 002): against NMF on every dataset, its ablations where they are trained (d1)
    drnn_nmf = re.search(r"\| d1: DRNN minus source-trained NMF, GNSDR \(seed 002\) \| \+2\.30 to \+2\.48 dB [^|]*\| "
                         r"([^|]+) \| d1\.drnn\.forward\.oracle\.gnsdr − d1\.nmf-source\.forward\.oracle\.gnsdr", markdown)
    assert drnn_nmf and re.fullmatch(r"[+-]\d+\.\d\d dB", drnn_nmf.group(1).strip())
    assert "| d1: discriminative minus plain objective, GSIR / GSAR (seed 002) | GSIR up, GSAR down" in markdown
    assert "| d1: best recurrent layer by GNSDR (seed 002) | DRNN-2 |" in markdown
    assert "d4: joint mask layer" not in markdown and "| d4: DRNN minus source-trained NMF" in markdown
    # seed 004: the generative prior against the best classical baseline, and against the VAD on the same decoders
    prior = re.search(r"\| d1: generative prior minus the best classical baseline, SDR \(seed 004\) \| > 0 [^|]*\| "
                      r"([^|]+) \| d1\.gp-vae\.pgd\.all\.sdr_median − d1\.[a-z-]+\.blind\.perm\.sdr_median \|"
                      r"[^|]*fastica [-\d.]+ dB \(SIR", markdown)
    assert prior and re.fullmatch(r"[+-]\d+\.\d\d dB", prior.group(1).strip())
    objective = re.search(r"\| d1: the seed's objective minus the VAD's, same decoders \(source-vae\), SDR \| [^|]+\| "
                          r"([^|]+) \|", markdown)
    assert objective and re.fullmatch(r"[+-]\d+\.\d\d dB", objective.group(1).strip())
    assert "| d2: generative prior minus the best classical baseline, SDR (seed 004) |" in markdown
    # deep clustering's claims (seed 003) on the datasets of dpcl.datasets (d1), from the SDRi medians
    plus = re.search(r"\| d1: DPCL\+\+ minus DPCL, SDRi \(seed 003\) \| > 0 dB [^|]*\| ([^|]+) \| "
                     r"d1\.dpcl\+\+ − d1\.dpcl \(forward\.oracle\.sdri_median\)", markdown)
    assert plus and re.fullmatch(r"[+-]\d+\.\d\d dB", plus.group(1).strip())
    assert "| d1: SCE minus DPCL, SDRi (seed 003) |" in markdown and "d3: DPCL++" not in markdown
    lines = (out / "paper_comparison.csv").read_text().splitlines()
    assert lines[0] == "profile,claim,paper,ours,key,note"
    assert all(line.startswith("demo,") for line in lines[1:]) and len(lines) > 8


def test_paper_profile_is_named_as_such(fake_evaluation, tmp_path):
    _, evaluation = fake_evaluation
    build_report(report_params("paper"), evaluation, tmp_path, datasets=["d4"])
    assert "profile paper: the paper's corpora" in (tmp_path / "paper_comparison.md").read_text()
    assert "not a reproduction" not in (tmp_path / "index.html").read_text()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def test_page_links_only_relative_files_that_exist(report):
    _, _, out, _ = report
    parser = _Links()
    parser.feed((out / "index.html").read_text())
    files = [link for link in parser.links if not link.startswith("#")]
    assert files and all(not re.match(r"^[a-z]+:|^/", link) for link in files)
    from urllib.parse import unquote
    missing = [link for link in files if not (out / unquote(link)).is_file()]
    assert not missing
    assert {f"plots/{name}" for name in FIGURES} <= set(files)
    assert parser.tags["audio"] == sum(link.endswith(".wav") for link in files) > 20
    assert parser.tags["table"] >= 5  # comparison, three datasets, training summary
    wav = next(out / link for link in files if link.endswith(".wav"))
    info = sf.info(str(wav))
    assert info.samplerate == 8600 and info.subtype == "PCM_16"


def test_page_shows_tables_and_escapes_text(report):
    _, _, out, _ = report
    page = (out / "index.html").read_text()
    for header in ("training", "signal estimate", "SDR", "SI-SDRi", "PESQ", "labels right", "failed", "mixtures"):
        assert f"<th>{header}</th>" in page
    assert "d1-class-vae &lt;x&gt;" in page and "<x>" not in page
    assert "non-finite samples set to 0" in page
    assert "<script" not in page and "http" not in page


def test_same_inputs_give_identical_bytes(report):
    _, _, first, second = report
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) > 50
    assert sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file()) == files
    different = [str(f) for f in files if (first / f).read_bytes() != (second / f).read_bytes()]
    assert not different


def test_no_evaluation_at_all_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no evaluation of"):
        build_report(report_params(), tmp_path / "evaluation", tmp_path / "out")


def test_demo_systems_pick_the_oracle_and_each_variants_best():
    metrics = {"d.a.forward.oracle.sdr_median": 1.0, "d.a.inverse.oracle.sdr_median": 3.0,
               "d.b.forward.oracle.sdr_median": None, "d.b.forward.classify.sdr_median": -2.0}
    systems = ["reference.oracle.oracle", "reference.mixture.oracle", "a.forward.oracle", "a.inverse.oracle",
               "b.forward.oracle", "b.forward.classify"]
    assert demo_systems(systems, metrics, "d") == ["reference.oracle.oracle", "a.inverse.oracle",
                                                   "b.forward.classify"]


def test_small_helpers():
    assert system_label("class-vae.inverse_joint.classify") == "class-vae · inverse (joint) · classify"
    assert system_label("reference.oracle.oracle") == "reference · oracle mask"
    spectrogram = log_spectrogram(np.sin(np.arange(8600) * 0.3))
    assert spectrogram.shape == (201, 44) and np.isfinite(spectrogram).all()
    assert "&lt;script&gt;" in H.markdown_to_html("| a |\n|---|\n| <script> |\n")
    with pytest.raises(ValueError, match="relative"):
        H.url("/etc/passwd")


def test_violins_cope_with_empty_constant_and_off_axis_rows(tmp_path):
    rows = [Row("a", np.array([1.0, 2.0, 4.0]), 0), Row("none", np.array([]), 5),
            Row("constant", np.array([3.0, 3.0]), 1), Row("mixture", np.array([150.0, 155.0]), 0, True, MIXTURE)]
    path = violin_figure({"sdr": rows, "sar": rows}, tmp_path / "v.png", "title", "demo")
    assert path.read_bytes().startswith(PNG_MAGIC)
    low, high = axis_limits(rows, (MIXTURE,))
    assert low < 1.0 and 4.0 < high < 150.0


def test_paired_gain_uses_only_sources_both_systems_scored():
    import pandas as pd

    frame = pd.DataFrame({"system": ["i", "i", "f", "f", "f"], "mixture_id": ["m0", "m1", "m0", "m1", "m2"],
                          "source": ["s"] * 5, "sdr": [5.0, np.nan, 2.0, 0.0, 100.0]})
    assert paired_median_gain(frame, "i", "f") == (3.0, 1)
    assert paired_median_gain(frame, "x", "f")[1] == 0


def _chromium() -> str | None:
    return next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := shutil.which(name))), None)


def test_page_renders_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (apt-get install -y chromium) to render the report page")
    _, _, out, _ = report
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    page = (out / "index.html").resolve().as_uri()
    dom = subprocess.run(flags + ["--dump-dom", page], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "<table>" in dom and dom.count("<audio") > 20 and "Dataset d4" in dom
    assert "profile demo: synthetic demo corpus" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,2000", page], capture_output=True,
                   timeout=120, check=True)
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 50_000  # a blank page is a few kB
