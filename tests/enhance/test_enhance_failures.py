"""`enhance` on hostile-but-fair input: every failure is one line naming the file (exit code 2, no traceback),
refused before the first block wherever it can be known then, and no output or hidden partial file is left."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from pipeline.enhance.cli import main as enhance_main
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.stream import NonFiniteOutput, StreamingEnhancer
from pipeline.models.checkpoint import load_safely, save_atomic
from pipeline.testing.audio import REPO_ROOT, noise, tone, write_wav
from pipeline.testing.models import save_tiny_vae

CLASSES = ["speech", "background"]


@pytest.fixture
def setup(tmp_path):
    """A tiny model, a registry naming it and a 2-s input in tmp_path."""
    model = save_tiny_vae(tmp_path / "model.pt", CLASSES)
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"default": "tiny", "selection": "test", "models": {
        "tiny": {"path": str(model), "dataset": "dx", "classes": CLASSES, "dialogue_classes": ["speech"]}}}))
    source = write_wav(tmp_path / "in.wav", 0.3 * noise(2.0, 16000) + tone(2.0, 16000), 16000)
    return tmp_path, model, registry, source


def _enhance(capsys, *argv) -> tuple[int, str]:
    """Exit code and the command's own error lines (log lines left out)."""
    code = enhance_main([str(a) for a in argv] + ["--quiet"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("enhance:")]
    return code, "\n".join(lines)


def _left_behind(folder) -> list:
    return sorted(p.name for p in folder.rglob("*") if "partial" in p.name or p.stem.startswith("out"))


def _no_work(monkeypatch):
    """Fail the test if a model is loaded or a block processed (the refusals must come before any work)."""
    def refuse(*_, **__):
        raise AssertionError("work started before the refusal")
    monkeypatch.setattr(DialogueMasker, "load", refuse)
    monkeypatch.setattr(StreamingEnhancer, "process", refuse)


# ------------------------------------------------------------------------------------------- before any work

@pytest.mark.parametrize("edit, message", [
    (lambda d: ["-o", d], r"output .* is a folder; expected a file path"),
    (lambda d: ["-o", d / "out.txt"], r"output .*out\.txt has extension '\.txt'; expected an audio extension"),
    (lambda d: ["-o", d / "out"], r"output .*out has no extension; expected an audio extension"),
    (lambda d: ["-o", d / "in.dialogue.wav", "--stems", d],
     r"the output and the dialogue would both be written to .*in\.dialogue\.wav"),
    (lambda d: ["-o", d / "out.wav", "--stems", d / "in.wav"], r"--stems .*in\.wav is a file; expected a folder"),
    (lambda d: ["-o", d / "out.wav", "--block-seconds", "0"],
     r"--block-seconds 0\.0; expected a number of seconds > 0"),
    (lambda d: ["-o", d / "out.wav", "--block-seconds", "-2"], r"--block-seconds -2\.0; expected"),
    (lambda d: ["-o", d / "out.wav", "--block-seconds", "nan"], r"--block-seconds nan; expected"),
    (lambda d: ["-o", d / "out.wav", "--block-seconds", "inf"], r"--block-seconds inf; expected"),
])
def test_bad_arguments_are_refused_before_any_work(setup, capsys, monkeypatch, edit, message):
    tmp_path, _, registry, source = setup
    _no_work(monkeypatch)
    code, err = _enhance(capsys, source, *edit(tmp_path), "--registry", registry)
    assert code == 2 and err.count("\n") == 0 and re.search(message, err), err
    assert _left_behind(tmp_path) == []


def test_stems_that_would_overwrite_each_other_or_the_input_are_refused(setup, capsys, monkeypatch):
    tmp_path, _, registry, source = setup
    _no_work(monkeypatch)
    stems = tmp_path / "stems"
    stems.mkdir()
    (stems / "in.dialogue.wav").write_bytes(b"")
    (stems / "in.background.wav").symlink_to(stems / "in.dialogue.wav")  # both stems would land in one file
    code, err = _enhance(capsys, source, "-o", tmp_path / "out.wav", "--stems", stems, "--registry", registry)
    assert code == 2 and "the dialogue and the background would both be written to" in err, err
    (stems / "in.background.wav").unlink()
    (stems / "in.dialogue.wav").unlink()
    (stems / "in.dialogue.wav").symlink_to(source)
    code, err = _enhance(capsys, source, "-o", tmp_path / "out.wav", "--stems", stems, "--registry", registry)
    assert code == 2 and "dialogue stem" in err and "is the input file" in err, err


# ------------------------------------------------------------------------------------------- corrupt input

def test_a_truncated_or_corrupt_input_names_the_file_and_the_position(setup, capsys):
    tmp_path, _, registry, _ = setup
    x = np.stack([0.3 * noise(6.0, 8000), tone(6.0, 8000)], axis=1)
    sf.write(str(tmp_path / "whole.flac"), x, 8000)
    sf.write(str(tmp_path / "whole.wav"), x, 8000, subtype="PCM_16")
    for name in ("whole.flac", "whole.wav"):  # cut in the middle of the audio data
        data = (tmp_path / name).read_bytes()
        (tmp_path / name.replace("whole", "cut")).write_bytes(data[:len(data) // 2])
    code, err = _enhance(capsys, tmp_path / "cut.flac", "-o", tmp_path / "out.flac", "--registry", registry)
    assert code == 2 and "cut.flac: cannot decode past" in err and "s of 6.00 s" in err
    assert "truncated or corrupt" in err
    code, err = _enhance(capsys, tmp_path / "cut.wav", "-o", tmp_path / "out.wav", "--registry", registry)
    assert code == 2 and "cut.wav: truncated: its header declares 192000 bytes of audio (6.00 s)" in err, err
    assert _left_behind(tmp_path) == []


# ------------------------------------------------------------------------------------------- never non-finite

def test_a_model_file_with_nan_weights_is_refused_at_load_naming_the_tensor(setup, capsys):
    tmp_path, model, registry, source = setup
    payload = load_safely(model)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name].view(-1)[0] = float("nan")
    save_atomic(tmp_path / "nan.pt", payload)
    with pytest.raises(ValueError, match=rf"nan\.pt: weight {name} holds 1 NaN or infinite values"):
        DialogueMasker.load(tmp_path / "nan.pt", ["speech"])
    code, err = _enhance(capsys, source, "-o", tmp_path / "out.wav", "--model", tmp_path / "nan.pt",
                         "--dialogue-classes", "speech", "--registry", registry)
    assert code == 2 and f"weight {name} holds 1 NaN" in err and _left_behind(tmp_path) == []


def test_huge_finite_samples_are_refused_and_moderate_overs_work(setup, capsys):
    tmp_path, _, registry, _ = setup
    x = tone(2.0, 16000, amplitude=1.0)
    write_wav(tmp_path / "huge.wav", 1e30 * x, 16000, subtype="FLOAT")   # gave an all-NaN output, exit 0
    code, err = _enhance(capsys, tmp_path / "huge.wav", "-o", tmp_path / "out.wav", "--registry", registry)
    assert code == 2 and "huge.wav: samples up to 1e+30 in the block at 0.00 s" in err and "within ±1000" in err
    assert _left_behind(tmp_path) == []
    write_wav(tmp_path / "loud.wav", 4.0 * x, 16000, subtype="FLOAT")    # +12 dB over full scale: fine
    code, err = _enhance(capsys, tmp_path / "loud.wav", "-o", tmp_path / "loud_out.wav", "--registry", registry)
    out = sf.read(str(tmp_path / "loud_out.wav"))[0]
    assert code == 0 and np.isfinite(out).all() and 0.5 < np.abs(out).max() <= 1.0 + 1e-6


def test_the_level_of_a_window_is_computed_without_overflow(setup):
    _, model, _, _ = setup
    masker = DialogueMasker.load(model, ["speech"])
    windows = torch.rand(3, 44, 201) + 0.1
    level = masker.separator._rms(windows)
    for scale in (1e-30, 1e25):  # squares of 1e25 overflow float32 (they made every mask NaN)
        assert torch.allclose(masker.separator._rms(windows * scale), level * scale, rtol=1e-4)
        assert torch.isfinite(masker(windows * scale)).all()


class _NaNAfter:
    """A toy streaming separator whose estimates turn NaN from its `after`-th call on."""

    classes = CLASSES

    def __init__(self, settings, after):
        self.settings, self.after, self.calls = settings, after, 0

    def magnitudes(self, windows, frames=None):
        self.calls += 1
        out = torch.stack([windows[:, frames], 3 * windows[:, frames]], dim=1)
        return out * float("nan") if self.calls > self.after else out


def test_a_non_finite_block_stops_naming_the_file_and_the_blocks_position(setup, capsys, monkeypatch):
    tmp_path, model, registry, _ = setup
    from pipeline.separators import registry as kinds
    from pipeline.separators.base import Kind

    settings = DialogueMasker.load(model, ["speech"]).settings
    monkeypatch.setitem(kinds.KINDS, "vae-forward", Kind("vae-forward", lambda *_: [], lambda *_: None,
                                                         window=lambda path, device: _NaNAfter(settings, 2)))
    source = write_wav(tmp_path / "long.wav", noise(5.0, 8600), 8600)
    code, err = _enhance(capsys, source, "-o", tmp_path / "out.wav", "--stems", tmp_path / "stems",
                         "--registry", registry, "--block-seconds", "1")
    assert code == 2 and "long.wav: the model returned" in err
    assert "NaN or infinite mask values, the first for the block at" in err
    at = float(err.split("block at ")[1].split(" s")[0])
    # blocks of 8 frames, each due 35 frames later: runs 1 and 2 (after 1 s and 2 s of input) masked block 0 and
    # blocks 1-5; run 3 starts at block 6
    assert at == pytest.approx((6 * 8 * 200 - 200) / 8600, abs=0.006)
    stems = tmp_path / "stems"
    assert _left_behind(tmp_path) == [] and (not stems.exists() or not list(stems.iterdir()))


def test_a_non_finite_dialogue_estimate_is_never_returned(setup, monkeypatch):
    _, model, _, _ = setup
    enhancer = StreamingEnhancer(DialogueMasker.load(model, ["speech"]), 8600, 1, dialogue_gain_db=6)
    enhancer.process(noise(1.0, 8600)[:, None])
    monkeypatch.setattr(enhancer.masks, "process", lambda samples: np.full_like(samples, np.inf))
    with pytest.raises(NonFiniteOutput, match=r"NaN or infinite samples in the dialogue estimate of the block at "
                                              r"\d\.\d\d-\d\.\d\d s \(model .*model\.pt\)"):
        enhancer.process(noise(1.0, 8600)[:, None])


# ------------------------------------------------------------------------------------------- registry and model files

def _registry_case(tmp_path, model, case):
    path = tmp_path / "bad_registry.json"
    entry = {"path": str(model), "dialogue_classes": ["speech"]}
    content = {
        "syntax": '{"default": "tiny", "models": {',
        "list": json.dumps([entry]),
        "default": json.dumps({"default": "other", "models": {"tiny": entry}}),
        "entry": json.dumps({"default": "tiny", "models": {"tiny": {"dialogue_classes": ["speech"]}}}),
        "missing model": json.dumps({"default": "tiny",
                                     "models": {"tiny": {**entry, "path": str(tmp_path / "no.pt")}}}),
    }[case]
    path.write_text(content)
    return path


@pytest.mark.parametrize("case, message", [
    ("syntax", r"registry .*bad_registry\.json: not valid JSON \(Expecting .*line 1 column \d+\); expected the "
               r"registry"),
    ("list", r"registry .*bad_registry\.json: holds a list without a 'models' mapping"),
    ("default", r"registry .*bad_registry\.json: default 'other' is not one of its models \['tiny'\]"),
    ("entry", r"registry .*bad_registry\.json: model 'tiny' has path None"),
    ("missing model", r"registry .*bad_registry\.json: model 'tiny' names .*no\.pt, which does not exist"),
])
def test_a_broken_registry_is_one_line_naming_it(setup, capsys, case, message):
    tmp_path, model, _, source = setup
    registry = _registry_case(tmp_path, model, case)
    code, err = _enhance(capsys, source, "-o", tmp_path / "out.wav", "--registry", registry)
    assert code == 2 and err.count("\n") == 0 and re.search(message, err), err


@pytest.mark.parametrize("payload, message", [
    ([1, 2, 3], r"odd\.pt: a torch file holding a list; expected a model file"),
    ({"weights": torch.zeros(3)}, r"odd\.pt: a torch file without format, shape, state_dict"),
    ({"format": 2, "shape": {"num_classes": 2, "colour": 1}, "state_dict": {}},
     r"odd\.pt: the network does not fit the stored shape"),
    (b"not a torch file at all", r"odd\.pt is not a loadable checkpoint"),
])
def test_a_model_file_that_is_not_ours_is_one_line_naming_it(setup, capsys, payload, message):
    tmp_path, _, registry, source = setup
    if isinstance(payload, bytes):
        (tmp_path / "odd.pt").write_bytes(payload)
    else:
        torch.save(payload, tmp_path / "odd.pt")
    code, err = _enhance(capsys, source, "-o", tmp_path / "out.wav", "--model", tmp_path / "odd.pt",
                         "--dialogue-classes", "speech", "--registry", registry)
    assert code == 2 and err.count("\n") == 0 and re.search(message, err), err


# ------------------------------------------------------------------------------------------- every way out

def test_ctrl_c_mid_run_removes_the_partial_files(setup, capsys, monkeypatch):
    tmp_path, _, registry, source = setup
    process = StreamingEnhancer.process
    calls = []

    def interrupted(self, chunk):
        calls.append(1)
        if len(calls) == 2:
            assert list(tmp_path.glob(".*.partial*")), "the partial files exist while running"
            raise KeyboardInterrupt
        return process(self, chunk)

    monkeypatch.setattr(StreamingEnhancer, "process", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    code = enhance_main([str(source), "-o", str(tmp_path / "out.wav"), "--stems", str(tmp_path / "stems"),
                         "--registry", str(registry), "--block-seconds", "0.5", "--quiet"])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert _left_behind(tmp_path) == [] and signal.getsignal(signal.SIGTERM) is before  # restored


SLOW_ENHANCE = """
import sys, time
from pipeline.enhance import stream
process = stream.StreamingEnhancer.process
stream.StreamingEnhancer.process = lambda self, chunk: (time.sleep(0.1), process(self, chunk))[1]
from pipeline.enhance.cli import main
sys.exit(main(sys.argv[1:]))
"""


def terminate_mid_run(tmp_path, registry) -> tuple[int, str]:
    """Run enhance (slowed to 0.1 s a block) in a subprocess on a 30-s input, SIGTERM it once its partial files
    exist; its exit code and stderr."""
    source = write_wav(tmp_path / "long.wav", noise(30.0, 8000), 8000)  # 60 blocks of 0.5 s
    process = subprocess.Popen([sys.executable, "-c", SLOW_ENHANCE, str(source), "-o", str(tmp_path / "out.wav"),
                                "--stems", str(tmp_path / "stems"), "--registry", str(registry),
                                "--block-seconds", "0.5", "--quiet"], cwd=REPO_ROOT, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "stems").glob(".*.partial*")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.05)
    time.sleep(0.3)  # a few blocks in
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def test_sigterm_mid_run_removes_the_partial_files_and_exits_non_zero(setup):
    tmp_path, _, registry, _ = setup
    code, err = terminate_mid_run(tmp_path, registry)
    assert code == 128 + signal.SIGTERM, err
    assert "enhance: terminated by SIGTERM; no output written" in err and "Traceback" not in err
    assert _left_behind(tmp_path) == []
