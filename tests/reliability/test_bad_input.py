"""The bad-input matrix: one hostile-but-fair input per row, each refused early naming the item, or counted and
listed when it is one bad file of a corpus. Every row's outcome is printed in the terminal summary (conftest.py).

The detailed tests of each class live beside their modules (tests/test_config.py, tests/corpora/, tests/test_shards.py,
tests/orchestration/test_parallel.py, tests/enhance/test_enhance_failures.py); this matrix runs one case of every
class end to end through the public entry points and says what each got.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import soundfile as sf
import torch

from pipeline.config import ConfigError, parse_params
from pipeline.corpora.archive import extract
from pipeline.corpora.download import ChecksumError, DownloadError, download
from pipeline.corpora.prepare import prepare_clips, prepare_corpus
from pipeline.corpora.recipes import list_recordings
from pipeline.corpora.recordings import Recording
from pipeline.enhance.cli import main as enhance_main
from pipeline.models.checkpoint import load_safely, save_atomic
from pipeline.shards import ShardIntegrityError, shard_paths
from pipeline.testing.audio import repo_params_raw, tiny_params, tone, write_wav
from pipeline.testing.http_server import LocalHTTPServer
from pipeline.testing.models import save_tiny_vae
from tests.enhance.test_enhance_failures import terminate_mid_run
from tests.reliability.conftest import OUTCOMES

FAST = {"backoff_s": 0.01, "timeout_s": 5.0, "progress": False}


# ------------------------------------------------------------------------------------------------ params


def _params_case(edit: Callable[[dict], Any]) -> Callable[[Path], Any]:
    def run(tmp_path: Path) -> Any:
        raw = repo_params_raw()
        edit(raw)
        return parse_params(raw)
    return run


# ------------------------------------------------------------------------------------------------ folders


def _folder(tmp_path: Path, rows: list[str] | None = None, csv_bytes: bytes | None = None) -> Any:
    for i, name in enumerate(("a.wav", "b.wav")):
        write_wav(tmp_path / "mine" / "x" / name, tone(1.0, 16000, 300 + 50 * i), 16000)
    labels = "subfolders"
    if rows is not None or csv_bytes is not None:
        labels = str(tmp_path / "mine" / "labels.csv")
        data = csv_bytes if csv_bytes is not None else ("path,label,split\n" + "\n".join(rows) + "\n").encode()
        Path(labels).write_bytes(data)
    raw = repo_params_raw()
    raw["folders"] = {"mine": {"path": str(tmp_path / "mine"), "labels": labels}}
    return parse_params(raw)


def _list(rows: list[str] | None = None, csv_bytes: bytes | None = None) -> Callable[[Path], Any]:
    return lambda tmp_path: list_recordings("mine", _folder(tmp_path, rows, csv_bytes), None)


def _non_utf8_name(tmp_path: Path) -> Any:
    params = _folder(tmp_path)
    good = write_wav(tmp_path / "mine" / "x" / "cafe.wav", tone(1.0, 16000), 16000)
    os.rename(good, os.fsencode(good.parent) + b"/caf\xe9.wav")
    report = prepare_corpus("mine", params, None, tmp_path / "clips", progress=False)
    return f"{report['recordings_used']} used, skipped {report['skipped']}"


def _quiet_speaker(tmp_path: Path) -> Any:
    params = tiny_params()
    path = write_wav(tmp_path / "quiet.wav", tone(0.8, 16000, amplitude=0.004), 16000)  # about -52 dBFS
    recording = Recording(path=path, source_file="quiet.wav", label="yes", speaker="quiet", gender=None,
                          split="train")
    report = prepare_clips("mine", [recording], tmp_path / "out", params.audio, params.shards, progress=False)
    return f"{report.recordings_used} of 1 recordings kept, {report.dropped_silent} clips dropped as silent"


# ------------------------------------------------------------------------------------------------ shards


def _shards(tmp_path: Path, damage: str) -> Any:
    params = tiny_params()
    recordings = [Recording(path=write_wav(tmp_path / f"{i}.wav", tone(9.0, 8600, 200.0 + i), 8600),
                            source_file=f"{i}.wav", label="a", speaker="s", gender=None, split="train")
                  for i in range(3)]  # 27 clips -> shards of 16 and 11 rows
    prepare_clips("c", recordings, tmp_path / "clips", params.audio, params.shards, progress=False)
    first, second = shard_paths(tmp_path / "clips" / "train")
    if damage == "flip":
        data = bytearray(second.read_bytes())
        data[len(data) // 2] ^= 0x01
        second.write_bytes(bytes(data))
    elif damage == "swap":
        first.rename(tmp_path / "tmp"), second.rename(first), (tmp_path / "tmp").rename(second)
    else:
        second.unlink()
    return shard_paths(tmp_path / "clips" / "train")


# ------------------------------------------------------------------------------------------------ downloads


def _served(tmp_path: Path, payload: bytes = b"\x1f\x8b" + bytes(range(256)) * 64) -> Path:
    (tmp_path / "www").mkdir(exist_ok=True)
    (tmp_path / "www" / "file.tar.gz").write_bytes(payload)
    return tmp_path / "www"


def _html_page(tmp_path: Path) -> Any:
    with LocalHTTPServer(_served(tmp_path), content_type="text/html") as url:
        return download(f"{url}/file.tar.gz", tmp_path / "dl" / "file.tar.gz", **FAST)


def _changed_upstream(tmp_path: Path) -> Any:
    served, lock = _served(tmp_path), tmp_path / "downloads.lock.json"
    with LocalHTTPServer(served) as url:
        download(f"{url}/file.tar.gz", tmp_path / "dl" / "file.tar.gz", lock=lock, **FAST)
        (served / "file.tar.gz").write_bytes(b"\x1f\x8b another version")
        (tmp_path / "dl" / "file.tar.gz").unlink()
        return download(f"{url}/file.tar.gz", tmp_path / "dl" / "file.tar.gz", lock=lock, **FAST)


def _unverifiable_part(tmp_path: Path) -> Any:
    dest = tmp_path / "dl" / "file.tar.gz"
    dest.parent.mkdir(parents=True)
    dest.with_name("file.tar.gz.part").write_bytes(b"bytes of unknown origin")
    server = LocalHTTPServer(_served(tmp_path))
    with server as url:
        download(f"{url}/file.tar.gz", dest, **FAST)
    same = dest.read_bytes() == (tmp_path / "www" / "file.tar.gz").read_bytes()
    return f"restarted from zero (Range headers sent: {[r.range for r in server.requests]}), file intact: {same}"


def _same_size_archive(tmp_path: Path) -> Any:
    import tarfile

    def make(text: bytes) -> Path:
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / "a.txt").write_bytes(text)
        with tarfile.open(tmp_path / "c.tar", "w") as tar:
            tar.add(tmp_path / "src" / "a.txt", arcname="a.txt")
        return tmp_path / "c.tar"

    extract(make(b"version 1\n"), tmp_path / "out")
    extract(make(b"version 2\n"), tmp_path / "out")
    return f"re-extracted: a.txt now holds {(tmp_path / 'out' / 'a.txt').read_bytes()!r}"


# ------------------------------------------------------------------------------------------------ enhance


def _enhance(edit: Callable[[Path, Path, Path], list[Any]]) -> Callable[[Path], Any]:
    """Run the enhance command with a tiny model that the registry names; `edit(tmp_path, input, model)` gives its
    arguments (`input`: a 2-s WAV). Returns its exit code, its error line and what it left behind."""
    def run(tmp_path: Path) -> Any:
        model = save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
        registry = tmp_path / "registry.json"
        registry.write_text(json.dumps({"default": "tiny", "models": {
            "tiny": {"path": str(model), "dialogue_classes": ["speech"]}}}))
        source = write_wav(tmp_path / "in.wav", tone(2.0, 16000), 16000)
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            code = enhance_main([str(a) for a in ["--registry", registry, "--quiet", *edit(tmp_path, source, model)]])
        line = " | ".join(x for x in errors.getvalue().splitlines() if x.startswith("enhance:"))
        return f"exit {code}: {line}; left behind: {_enhance_leftovers(tmp_path)}"
    return run


def _enhance_leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.rglob("*") if "partial" in p.name or p.stem.startswith("out"))


def _huge(tmp_path: Path, source: Path, model: Path) -> list[Any]:
    write_wav(tmp_path / "huge.wav", 1e30 * tone(2.0, 16000), 16000, subtype="FLOAT")
    return [tmp_path / "huge.wav", "-o", tmp_path / "out.wav"]


def _nan_weights(tmp_path: Path, source: Path, model: Path) -> list[Any]:
    payload = load_safely(model)
    payload["state_dict"]["decoders.0.fc.0.0.weight"].view(-1)[3] = float("nan")
    save_atomic(tmp_path / "nan.pt", payload)
    return [source, "-o", tmp_path / "out.wav", "--model", tmp_path / "nan.pt", "--dialogue-classes", "speech"]


def _model_settings(**info: Any) -> Callable[[Path, Path, Path], list[Any]]:
    def edit(tmp_path: Path, source: Path, model: Path) -> list[Any]:
        frames = 1 + info["clip_samples"] // info["stft"]["hop_length"]
        save_tiny_vae(tmp_path / "other.pt", ["speech", "background"], frames=frames,
                      bins=info["stft"]["n_fft"] // 2 + 1, **info)
        return [source, "-o", tmp_path / "out.wav", "--model", tmp_path / "other.pt", "--dialogue-classes", "speech"]
    return edit


def _cut(suffix: str) -> Callable[[Path, Path, Path], list[Any]]:
    def edit(tmp_path: Path, source: Path, model: Path) -> list[Any]:
        sf.write(str(tmp_path / f"whole{suffix}"), tone(4.0, 8000, channels=2), 8000)
        data = (tmp_path / f"whole{suffix}").read_bytes()
        (tmp_path / f"cut{suffix}").write_bytes(data[:len(data) // 2])
        return [tmp_path / f"cut{suffix}", "-o", tmp_path / f"out{suffix}"]
    return edit


def _registry(text: str) -> Callable[[Path, Path, Path], list[Any]]:
    def edit(tmp_path: Path, source: Path, model: Path) -> list[Any]:
        (tmp_path / "broken.json").write_text(text.replace("MISSING", str(tmp_path / "gone.pt")))
        return [source, "-o", tmp_path / "out.wav", "--registry", tmp_path / "broken.json"]
    return edit


def _torch_list(tmp_path: Path, source: Path, model: Path) -> list[Any]:
    torch.save([1, 2, 3], tmp_path / "list.pt")
    return [source, "-o", tmp_path / "out.wav", "--model", tmp_path / "list.pt", "--dialogue-classes", "speech"]


def _sigterm(tmp_path: Path) -> Any:
    model = save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"default": "tiny", "models": {
        "tiny": {"path": str(model), "dialogue_classes": ["speech"]}}}))
    code, err = terminate_mid_run(tmp_path, registry)
    line = " | ".join(x for x in err.splitlines() if x.startswith("enhance:"))
    return f"exit {code}: {line}; left behind: {_enhance_leftovers(tmp_path)}"


# ------------------------------------------------------------------------------------------------ the matrix

CASES = [
    # (case, run(tmp_path), expected exception or None, regex its message / the returned text must match)
    ("params: labels: subfolder (typo)",
     _params_case(lambda r: r["folders"].update(mine={"path": "/data", "labels": "subfolder"})),
     ConfigError, r"^folders\.mine\.labels = 'subfolder': expected subfolders or the path of a \.csv"),
    ("params: sample_rate: \"8600\"", _params_case(lambda r: r["audio"].update(sample_rate="8600")),
     ConfigError, r"^audio\.sample_rate = '8600': expected an integer"),
    ("params: sample_rate: 1", _params_case(lambda r: r["audio"].update(sample_rate=1)),
     ConfigError, r"^audio\.sample_rate = 1: expected an integer >= 1000"),
    ("params: clip_seconds: 0.001", _params_case(lambda r: r["audio"].update(clip_seconds=0.001)),
     ConfigError, r"^audio\.clip_seconds = 0\.001: expected a clip length in seconds >= 0\.1"),
    ("params: n_fft longer than a clip", _params_case(lambda r: r["stft"].update(n_fft=16384)),
     ConfigError, r"^stft\.n_fft = 16384: expected at most a clip's length"),
    ("params: folder name not a safe stage name",
     _params_case(lambda r: r["folders"].update({"my sfx": {"path": "/data"}})),
     ConfigError, r"^folders\.my sfx = 'my sfx': expected a name of letters"),
    ("folder: CSV row ../x", _list(["x/a.wav,x,train", "../x.wav,x,train"]),
     ValueError, r"labels\.csv, line 3: path '\.\./x\.wav' lies outside the folder"),
    ("folder: CSV row with an absolute path elsewhere", _list(["x/a.wav,x,train", "/etc/hostname,x,train"]),
     ValueError, r"labels\.csv, line 3: path '/etc/hostname' lies outside the folder"),
    ("folder: duplicate CSV row", _list(["x/a.wav,x,train", "x/a.wav,x,train"]),
     ValueError, r"line 2 \(train\) and .*line 3 \(train\) list the same file x/a\.wav"),
    ("folder: one file in two splits", _list(["x/a.wav,x,train", "x/./a.wav,x,test"]),
     ValueError, r"line 2 \(train\) and .*line 3 \(test\) list the same file x/a\.wav"),
    ("folder: label CSV not UTF-8", _list(csv_bytes="path,label\nx/a.wav,caf\u00e9\n".encode("latin-1")),
     ValueError, r"labels\.csv, line 2: not UTF-8 text \(byte 0xe9"),
    ("folder: file name not UTF-8", _non_utf8_name, None,
     r"^2 used, skipped \[\{'file': 'x/caf\\\\xe9\.wav', 'reason': 'file name: not valid UTF-8"),
    ("prepare: a speaker recorded at -52 dBFS", _quiet_speaker, None,
     r"^1 of 1 recordings kept, 0 clips dropped as silent$"),
    ("shards: a flipped byte", lambda p: _shards(p, "flip"),
     ShardIntegrityError, r"clips-00001\.parquet has sha256 [0-9a-f]{64}, its manifest says"),
    ("shards: two shards swapped", lambda p: _shards(p, "swap"),
     ShardIntegrityError, r"clips-00000\.parquet has sha256 .*another shard in its place"),
    ("shards: a shard deleted", lambda p: _shards(p, "delete"),
     ShardIntegrityError, r"clips-00001\.parquet is listed in .*manifest\.json but missing"),
    ("download: an HTML error page", _html_page, DownloadError, r"sent an HTML page \(text/html\), not the file"),
    ("download: file changed upstream (no pinned sha256)", _changed_upstream,
     ChecksumError, r"expected sha256 [0-9a-f]{64} \(recorded in .*downloads\.lock\.json on the first download\), "
                    r"got [0-9a-f]{64}; the file changed upstream"),
    ("download: a .part that cannot be validated", _unverifiable_part, None,
     r"^restarted from zero \(Range headers sent: \[None\]\), file intact: True$"),
    ("extract: another archive of the same name and size", _same_size_archive, None,
     r"^re-extracted: a\.txt now holds b'version 2\\n'$"),
    ("enhance: float input with samples of 1e30", _enhance(_huge), None,
     r"^exit 2: .*huge\.wav: samples up to 3e\+29 in the block at 0\.00 s .*within ±1000.*; left behind: \[\]$"),
    ("enhance: a model file with a NaN weight", _enhance(_nan_weights), None,
     r"^exit 2: .*nan\.pt: weight decoders\.0\.fc\.0\.0\.weight holds 1 NaN or infinite values.*; left behind: \[\]$"),
    ("enhance: a model trained at 16 kHz, n_fft 256, hop 128",
     _enhance(_model_settings(sample_rate=16000, clip_samples=16000, stft={"n_fft": 256, "hop_length": 128})),
     None, r"^exit 0: ; left behind: \['out\.wav'\]$"),
    ("enhance: a model whose n_fft is no multiple of its hop",
     _enhance(_model_settings(clip_samples=8550, stft={"n_fft": 400, "hop_length": 150})),
     None, r"^exit 2: .*other\.pt: n_fft = 400, hop = 150; expected n_fft >= 2 and a multiple of the hop"),
    ("enhance: output path is a folder", _enhance(lambda d, s, m: [s, "-o", d]), None,
     r"^exit 2: enhance: error: output .* is a folder; expected a file path"),
    ("enhance: output extension .txt", _enhance(lambda d, s, m: [s, "-o", d / "out.txt"]), None,
     r"^exit 2: .*out\.txt has extension '\.txt'; expected an audio extension soundfile writes"),
    ("enhance: --stems names collide with the output",
     _enhance(lambda d, s, m: [s, "-o", d / "in.background.wav", "--stems", d]), None,
     r"^exit 2: .*the output and the background would both be written to .*in\.background\.wav"),
    ("enhance: --block-seconds nan", _enhance(lambda d, s, m: [s, "-o", d / "out.wav", "--block-seconds", "nan"]), None,
     r"^exit 2: enhance: error: --block-seconds nan; expected a number of seconds > 0"),
    ("enhance: a FLAC cut in the middle", _enhance(_cut(".flac")), None,
     r"^exit 2: .*cut\.flac: cannot decode past \d\.\d\d s of 4\.00 s .*truncated or corrupt; left behind: \[\]$"),
    ("enhance: a WAV whose header declares more audio than it holds", _enhance(_cut(".wav")), None,
     r"^exit 2: .*cut\.wav: truncated: its header declares 128000 bytes of audio \(4\.00 s\) but the file ends"),
    ("enhance: SIGTERM mid-run", _sigterm, None,
     r"^exit 143: enhance: terminated by SIGTERM; no output written; left behind: \[\]$"),
    ("enhance: registry that is not valid JSON", _enhance(_registry('{"default": ')), None,
     r"^exit 2: .*broken\.json: not valid JSON \(Expecting value, line 1 column 13\)"),
    ("enhance: registry naming a missing model file",
     _enhance(_registry('{"default": "a", "models": {"a": {"path": "MISSING", "dialogue_classes": ["speech"]}}}')),
     None, r"^exit 2: .*broken\.json: model 'a' names .*gone\.pt, which does not exist"),
    ("enhance: --model a torch file holding a list", _enhance(_torch_list), None,
     r"^exit 2: .*list\.pt: a torch file holding a list; expected a model file"),
]


@pytest.mark.parametrize("case, run, error, pattern", CASES, ids=[case for case, *_ in CASES])
def test_bad_input(case, run, error, pattern, tmp_path):
    if error is None:
        outcome = str(run(tmp_path))
        OUTCOMES.append((case, f"ok: {outcome}"))
        assert re.search(pattern, outcome), outcome
        return
    with pytest.raises(Exception) as caught:
        run(tmp_path)
    OUTCOMES.append((case, f"{type(caught.value).__name__}: {caught.value}"))
    assert isinstance(caught.value, error) and re.search(pattern, str(caught.value)), str(caught.value)
