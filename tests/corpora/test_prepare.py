from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.audio.clips import rms
from pipeline.corpora.prepare import prepare_clips
from pipeline.parallel import LocalPool
from pipeline.corpora.recordings import Recording, stable_split
from pipeline.config import SplitFractions
from pipeline.shards import audio_matrix, read_manifest, shard_paths
from pipeline.testing.audio import noise, tiny_params, tone, write_wav


def _recording(path, split="train", label="a", speaker="s"):
    return Recording(path=path, source_file=path.name, label=label, speaker=speaker, gender=None, split=split)


@pytest.fixture
def messy_corpus(tmp_path):
    """Good files at several rates and channel counts, plus every kind of bad file."""
    good = [
        write_wav(tmp_path / "a_16k.wav", tone(0.7, 16000), 16000),
        write_wav(tmp_path / "b_44k_stereo.wav", tone(2.6, 44100, channels=2), 44100),
        write_wav(tmp_path / "c_25k.flac", noise(1.2, 25000, seed=1), 25000),
    ]
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF1234WAVEjunkjunk")
    (tmp_path / "empty.wav").write_bytes(b"")
    nan = tone(0.5, 8000)
    nan[3] = np.inf
    bad = [tmp_path / "corrupt.wav", tmp_path / "empty.wav",
           write_wav(tmp_path / "inf.wav", nan, 8000, subtype="FLOAT"),
           write_wav(tmp_path / "silent.wav", np.zeros(8000, dtype=np.float32), 8000),
           tmp_path / "gone.wav"]
    return [_recording(p, split="test" if p.name.startswith("c") else "train") for p in good + bad]


def test_prepare_writes_clips_and_reports_every_bad_file(tmp_path, messy_corpus):
    params = tiny_params()
    report = prepare_clips("mine", messy_corpus, tmp_path / "out", params.audio, params.shards,
                           excluded=[{"file": "x.wav", "reason": "excluded: contains speech (manifest)"}],
                           progress=False).as_dict()
    assert report["recordings_used"] == 3
    # b: 2.6 s -> 3 clips (tail 0.6 s kept); a: 1 centred clip; c: 1 clip (tail 0.2 s dropped)
    assert report["clips"] == {"train": 4, "valid": 0, "test": 1}
    skipped = {item["file"]: item["reason"] for item in report["skipped"]}
    assert set(skipped) == {"x.wav", "corrupt.wav", "empty.wav", "inf.wav", "silent.wav", "gone.wav"}
    assert "NaN or infinite" in skipped["inf.wav"] and skipped["silent.wav"].startswith("silent")
    assert skipped["gone.wav"].startswith("FileNotFoundError")
    assert report["skipped_by_reason"]["excluded"] == 1 and report["recordings_skipped"] == 6

    table = pq.read_table(shard_paths(tmp_path / "out" / "train")[0])
    audio = audio_matrix(table.column("audio"))
    assert audio.shape == (4, 8600) and audio.dtype == np.float32
    np.testing.assert_allclose(rms(audio), params.audio.target_rms, rtol=1e-4)
    row = table.slice(0, 1).to_pylist()[0]
    assert row["clip_id"] == f"mine/a_16k.wav#{row['offset']}" and row["offset"] < 0
    assert (row["sample_rate"], row["num_samples"], row["corpus"], row["split"]) == (8600, 8600, "mine", "train")
    # RMS before normalisation, over the padded clip: a 0.3 sine filling 0.7 of it
    assert row["rms"] == pytest.approx(0.3 / np.sqrt(2) * np.sqrt(0.7), rel=0.02)
    assert table.column("offset").to_pylist()[1:] == [0, 8600, 17200]
    assert read_manifest(tmp_path / "out" / "valid")["rows"] == 0


def test_prepare_is_deterministic_whatever_the_worker_count(tmp_path, messy_corpus):
    params = tiny_params()
    digests = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        with LocalPool("processes", workers) as pool:
            prepare_clips("mine", messy_corpus, out, params.audio, params.shards, progress=False, parallel=pool)
        digests.append([s["sha256"] for split in ("train", "test") for s in read_manifest(out / split)["shards"]])
    assert digests[0] == digests[1]


def test_a_corpus_with_no_usable_file_fails_loudly(tmp_path):
    params = tiny_params()
    (tmp_path / "bad.wav").write_bytes(b"junk")
    with pytest.raises(ValueError, match="none of its 1 recordings could be used"):
        prepare_clips("mine", [_recording(tmp_path / "bad.wav")], tmp_path / "out", params.audio, params.shards,
                      progress=False)
    with pytest.raises(ValueError, match="lists no recordings"):
        prepare_clips("mine", [], tmp_path / "out", params.audio, params.shards, progress=False)


def test_stable_split_follows_fractions_and_never_changes():
    fractions = SplitFractions(0.8, 0.1, 0.1)
    splits = [stable_split(f"utt{i}", fractions) for i in range(4000)]
    assert 0.77 < splits.count("train") / 4000 < 0.83 and splits.count("valid") > 300
    assert stable_split("s1/bbaf2n", fractions) == stable_split("s1/bbaf2n", fractions)


def test_a_quietly_recorded_speaker_keeps_its_clips_and_silence_is_reported_per_speaker_and_label(tmp_path):
    """A speaker recorded 30 dB below the others (-51 dBFS words) is not silence; a recording of zeros is."""
    params = tiny_params()
    recordings = []
    for i in range(4):
        loud = write_wav(tmp_path / f"loud{i}.wav", tone(0.8, 16000, 300.0 + i, amplitude=0.3), 16000)
        quiet = write_wav(tmp_path / f"quiet{i}.wav", tone(0.8, 16000, 300.0 + i, amplitude=0.004), 16000)
        recordings += [_recording(loud, label="yes", speaker="loud"), _recording(quiet, label="yes", speaker="quiet")]
    zeros = write_wav(tmp_path / "zeros.wav", np.zeros(16000, dtype=np.float32), 16000)
    recordings.append(_recording(zeros, label="no", speaker="quiet"))
    report = prepare_clips("mine", recordings, tmp_path / "out", params.audio, params.shards, progress=False).as_dict()
    assert report["recordings_used"] == 8 and report["clips_dropped_silent"] == 1
    assert report["silence_by_speaker"]["quiet"] == {"recordings": 5, "recordings_silent": 1, "clips": 5,
                                                     "clips_silent": 1, "recordings_silent_share": 0.2}
    assert report["silence_by_label"]["yes"]["recordings_silent"] == 0
    assert report["silence_by_label"]["no"]["recordings_silent_share"] == 1.0
    assert report["silence_notable"] == ["label no: 1 of 1 recordings silent (100%)",
                                         "speaker quiet: 1 of 5 recordings silent (20%)"]


def test_silent_stretches_of_a_long_recording_are_dropped_relative_to_its_level(tmp_path):
    """3 s: a quiet word (-51 dBFS) then 2 s of faint noise (-84 dBFS) 33 dB below it: the noise is dropped, the word kept."""
    params = tiny_params()
    word = tone(1.0, 16000, amplitude=0.004)
    hiss = noise(2.0, 16000, seed=3, amplitude=0.00006)
    path = write_wav(tmp_path / "take.wav", np.concatenate([word, hiss]), 16000, subtype="FLOAT")
    report = prepare_clips("mine", [_recording(path)], tmp_path / "out", params.audio, params.shards,
                           progress=False).as_dict()
    assert (report["clips_total"], report["clips_dropped_silent"]) == (1, 2)
