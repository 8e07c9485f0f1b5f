"""Long test scenes: built from test recordings only, deterministic, at the requested levels and rates."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipeline.mixing.catalog import load_clip_index
from pipeline.config import ScenesConfig
from pipeline.mixing.scenes import build_scenes, read_scene, scene_recordings, scene_specs
from pipeline.testing.datasets import build_tiny_dataset

SCENES = ScenesConfig(datasets=("dt",), seconds=4.0, per_combination=1, ratios_db=(-6.0, 6.0),
                      layouts=((44100, 1), (44100, 2), (48000, 1), (48000, 2)), pause_seconds=(0.2, 0.6),
                      loudness_lufs=-23.0, max_peak=0.99, seed=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    params, _ = build_tiny_dataset(root)
    return root, params


def _build(root, params, out):
    return build_scenes("dt", params.datasets["dt"], SCENES, ["zero"], root / "clips", {"sc09": root / "raw"}, out)


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_scenes_are_byte_identical_when_rebuilt(tiny, tmp_path):
    root, params = tiny
    _build(root, params, tmp_path / "a")
    _build(root, params, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert len(_digest(tmp_path / "a")) == 2 * len(scene_specs(SCENES)) + 1  # two stems per scene + manifest
    assert not (tmp_path / "a.partial").exists()


def test_scenes_use_only_test_recordings(tiny, tmp_path):
    root, params = tiny
    manifest = _build(root, params, tmp_path / "s")
    used = {line["file"] for scene in manifest["scenes"] for line in scene["dialogue_lines"]}
    dialogue, background = scene_recordings(params.datasets["dt"], ["zero"], root / "clips", {"sc09": root / "raw"})
    pool = {f"{r.corpus}/{r.source_file}" for r in dialogue + background}
    assert used and used <= pool
    for split in ("train", "valid"):
        seen = {clip.rpartition("#")[0] for clip in load_clip_index(root / "clips", "sc09", split)["clip_id"]}
        assert not (pool & seen), f"{split} recordings in the scene pool: {sorted(pool & seen)}"
    assert all(line["file"].startswith("sc09/zero/") for scene in manifest["scenes"]
               for line in scene["dialogue_lines"])  # dialogue lines come from the dialogue class only


def test_scenes_have_the_requested_ratio_rate_channels_and_no_clipping(tiny, tmp_path):
    root, params = tiny
    manifest = _build(root, params, tmp_path / "s")
    specs = scene_specs(SCENES)
    assert [s["scene_id"] for s in manifest["scenes"]] == [s.scene_id for s in specs]
    for entry, spec in zip(manifest["scenes"], specs):
        dialogue, background, rate = read_scene(tmp_path / "s" / spec.scene_id)
        assert rate == spec.sample_rate and dialogue.shape == (int(SCENES.seconds * rate), spec.channels)
        assert entry["measured_ratio_lu"] == pytest.approx(spec.ratio_db, abs=0.05)
        assert np.abs(dialogue + background).max() <= SCENES.max_peak + 1e-6
        if spec.channels == 2:
            np.testing.assert_array_equal(dialogue[:, 0], dialogue[:, 1])           # centre-panned dialogue
            assert not np.array_equal(background[:, 0], background[:, 1])          # a real stereo background
        starts = [line["start"] for line in entry["dialogue_lines"]]
        assert starts == sorted(starts) and entry["dialogue_lines"][-1]["end"] <= SCENES.seconds


def test_a_dataset_without_background_recordings_is_refused(tiny, tmp_path):
    root, params = tiny
    with pytest.raises(ValueError, match="no background recordings"):
        scene_recordings(params.datasets["dt"], ["zero", "one", "two"], root / "clips", {"sc09": root / "raw"})
