"""Long test scenes: dialogue lines with pauses over a continuous background, at the rates people watch at.

What `enhance` meets in a film is not a 1-s clip: it is minutes of audio at 44.1 or 48 kHz, lines of dialogue
separated by pauses, over background sound that never stops. A scene is built here from the **test split's
recordings** of a dataset (the recordings behind its test clips, found through the same class filters as the
mixtures, so no training or validation recording ever appears), at their own sample rate, resampled (soxr HQ)
to the scene's rate:

- the dialogue track: utterances of the dataset's dialogue classes, edge silence trimmed, each at the same RMS,
  placed one after the other with pauses drawn from `pause_seconds`; the same in every channel (centre-panned);
- the background track: recordings of the other classes chained with short cross-fades, drawn independently
  per channel (a stereo background is not a copy of one channel);
- levels: the dialogue is scaled so that its integrated loudness (ITU-R BS.1770, gated, with `pyloudnorm`)
  lies `ratio_db` LU above the background's, the sum is set to `loudness_lufs` and scaled down (both stems
  together) if its peak would exceed `max_peak`.

Each scene is two 24-bit FLAC stems, `dialogue.flac` and `background.flac` (the mixture is the sum of the
decoded stems, exactly; float WAV is not used because libsndfile stamps its PEAK chunk with the time), plus an
entry in `scenes.json` listing what went into it and its measured levels. Same params and seed ->
byte-identical files.
"""
from __future__ import annotations

import json
import logging
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import soundfile as sf

from pipeline.audio.clips import rms
from pipeline.audio.io import load_mono
from pipeline.config import DatasetConfig, ScenesConfig
from pipeline.mixing.catalog import class_candidates
from pipeline.shards import file_sha256, write_json

log = logging.getLogger(__name__)

MANIFEST = "scenes.json"
STEMS = ("dialogue", "background")
UTTERANCE_RMS = 0.05          # every line at the same level before the scene's dialogue gain
TRIM_DB = -40.0               # edge samples quieter than this below the utterance's peak are trimmed
CROSSFADE_SECONDS = 0.05


@dataclass(frozen=True)
class SceneRecording:
    """A test recording a scene may use: its corpus, its path relative to the corpus root, its file."""

    corpus: str
    source_file: str
    path: Path


@dataclass(frozen=True)
class SceneSpec:
    """One scene to build: its id, dialogue-to-background ratio, rate and channels."""

    scene_id: str
    ratio_db: float
    sample_rate: int
    channels: int
    index: int


def ratio_tag(ratio_db: float) -> str:
    """`0.0` -> `0dB`, `-6.0` -> `-6dB`, `6.0` -> `+6dB` (in scene ids and metrics keys)."""
    return f"{ratio_db:+g}dB" if ratio_db else "0dB"


def scene_specs(config: ScenesConfig) -> list[SceneSpec]:
    """Every ratio x layout (rate, channels), `per_combination` scenes each, in a fixed order."""
    specs = []
    for ratio in config.ratios_db:
        for rate, channels in config.layouts:
            for _ in range(config.per_combination):
                index = len(specs)
                tag = "mono" if channels == 1 else f"{channels}ch"
                specs.append(SceneSpec(f"s{index:03d}_{ratio_tag(ratio)}_{rate // 1000}k_{tag}", float(ratio),
                                       int(rate), int(channels), index))
    return specs


def scene_recordings(config: DatasetConfig, dialogue_classes: Sequence[str], clips_root: Path,
                    raw_roots: dict[str, Path]) -> tuple[list[SceneRecording], list[SceneRecording]]:
    """The test recordings behind the dataset's test clips: (dialogue ones, background ones), sorted.

    `raw_roots` maps a corpus to the folder its `source_file` paths are relative to.
    """
    candidates = class_candidates(config, clips_root, "test")
    dialogue, background = set(), set()
    for name, frame in candidates.items():
        target = dialogue if name in dialogue_classes else background
        for clip_id in frame["clip_id"]:
            corpus, _, rest = clip_id.partition("/")
            target.add((corpus, rest.rpartition("#")[0]))
    for wanted, label in ((dialogue, "dialogue"), (background, "background")):
        if not wanted:
            raise ValueError(f"the test split has no {label} recordings for scenes (classes {list(candidates)}, "
                             f"dialogue classes {list(dialogue_classes)}); expected both kinds")

    def resolve(items: set[tuple[str, str]]) -> list[SceneRecording]:
        return [SceneRecording(corpus, source, Path(raw_roots[corpus]) / source) for corpus, source in sorted(items)]

    return resolve(dialogue), resolve(background)


def build_scenes(name: str, config: DatasetConfig, scenes: ScenesConfig, dialogue_classes: Sequence[str],
                 clips_root: Path, raw_roots: dict[str, Path], out_dir: Path) -> dict:
    """Build every scene of dataset `name` into `out_dir/<scene_id>/`; returns (and writes) the manifest."""
    import pyloudnorm

    dialogue_pool, background_pool = scene_recordings(config, dialogue_classes, clips_root, raw_roots)
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cache = _AudioCache()
    entries = []
    for spec in scene_specs(scenes):
        rng = np.random.default_rng([scenes.seed, zlib.crc32(name.encode()), spec.index])
        length = int(round(scenes.seconds * spec.sample_rate))
        dialogue, lines = _dialogue_track(dialogue_pool, length, spec.sample_rate, scenes.pause_seconds, rng, cache)
        background = np.stack([_background_track(background_pool, length, spec.sample_rate, rng, cache)
                               for _ in range(spec.channels)], axis=1)
        dialogue = np.repeat(dialogue[:, None], spec.channels, axis=1)
        meter = pyloudnorm.Meter(spec.sample_rate)
        dialogue *= 10 ** ((spec.ratio_db - (_loudness(meter, dialogue) - _loudness(meter, background))) / 20)
        mixture_lufs = _loudness(meter, dialogue + background)
        scale = 10 ** ((scenes.loudness_lufs - mixture_lufs) / 20)
        peak = float(np.abs(dialogue + background).max()) * scale
        scale *= min(1.0, scenes.max_peak / peak)
        dialogue, background = (dialogue * scale).astype(np.float32), (background * scale).astype(np.float32)
        folder = partial / spec.scene_id
        folder.mkdir()
        for stem, audio in zip(STEMS, (dialogue, background)):
            sf.write(folder / f"{stem}.flac", audio, spec.sample_rate, subtype="PCM_24")
        dialogue, background, _ = read_scene(folder)  # what every reader gets: the stems as stored
        mixture = dialogue + background
        entries.append({
            "scene_id": spec.scene_id, "ratio_db": spec.ratio_db, "sample_rate": spec.sample_rate,
            "channels": spec.channels, "seconds": scenes.seconds,
            "measured_ratio_lu": round(_loudness(meter, dialogue) - _loudness(meter, background), 3),
            "loudness_lufs": round(_loudness(meter, mixture), 3), "peak": round(float(np.abs(mixture).max()), 4),
            "dialogue_lines": lines,
            "sha256": {stem: file_sha256(folder / f"{stem}.flac") for stem in STEMS},
        })
    manifest = {"dataset": name, "dialogue_classes": list(dialogue_classes), "scenes": entries,
                "dialogue_recordings": len(dialogue_pool), "background_recordings": len(background_pool)}
    write_json(partial / MANIFEST, manifest)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)  # complete or absent: an interrupted build never looks finished
    return manifest


def read_scene(folder: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(dialogue, background, rate) of a built scene, each (samples, channels) float32."""
    dialogue, rate = sf.read(folder / "dialogue.flac", dtype="float32", always_2d=True)
    background, rate_b = sf.read(folder / "background.flac", dtype="float32", always_2d=True)
    if rate != rate_b or dialogue.shape != background.shape:
        raise ValueError(f"scene {folder}: stems differ in rate or shape ({rate}/{rate_b}, {dialogue.shape}/"
                         f"{background.shape}); rebuild it")
    return dialogue, background, rate


def load_manifest(scenes_dir: Path) -> dict:
    path = Path(scenes_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the scenes stage of this dataset")
    return json.loads(path.read_text())


class _AudioCache:
    """Recordings decoded once per (file, rate), the utterances' edge silence trimmed; lengths read from the
    file header, so finding a line that fits decodes nothing."""

    def __init__(self):
        self.items: dict[tuple[Path, int, bool], np.ndarray] = {}
        self.frames: dict[Path, tuple[int, int]] = {}

    def get(self, recording: SceneRecording, rate: int, trim: bool) -> np.ndarray:
        key = (recording.path, rate, trim)
        if key not in self.items:
            audio = load_mono(recording.path, rate)
            self.items[key] = _trim(audio) if trim else audio
        return self.items[key].astype(np.float64)

    def bound(self, recording: SceneRecording, rate: int) -> int:
        """At most how many samples the recording takes at `rate` (its untrimmed length, rounded up)."""
        if recording.path not in self.frames:
            info = sf.info(str(recording.path))
            self.frames[recording.path] = (info.frames, info.samplerate)
        frames, native = self.frames[recording.path]
        return -(-frames * rate // native) + 1


def _trim(audio: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) >= np.abs(audio).max() * 10 ** (TRIM_DB / 20))
    return audio[loud[0]:loud[-1] + 1] if loud.size else audio


def _dialogue_track(pool: list[SceneRecording], length: int, rate: int, pauses: Sequence[float],
                    rng: np.random.Generator, cache: _AudioCache) -> tuple[np.ndarray, list[dict]]:
    track = np.zeros(length)
    lines: list[dict] = []
    position = int(rng.uniform(*pauses) * rate)
    while True:
        drawn = int(rng.integers(len(pool)))
        candidates = (pool[(drawn + k) % len(pool)] for k in range(len(pool)))  # the drawn line, else the next
        recording = next((r for r in candidates if position + cache.bound(r, rate) <= length), None)
        if recording is None:  # no line fits in what is left of the scene
            break
        line = cache.get(recording, rate, trim=True)
        track[position:position + line.size] = line * (UTTERANCE_RMS / max(float(rms(line)), 1e-9))
        lines.append({"file": f"{recording.corpus}/{recording.source_file}", "start": round(position / rate, 4),
                      "end": round((position + line.size) / rate, 4)})
        position += line.size + int(rng.uniform(*pauses) * rate)
    if not lines:
        raise ValueError(f"no dialogue line fits in a {length / rate:.1f}-s scene; make scenes.seconds longer")
    return track, lines


def _background_track(pool: list[SceneRecording], length: int, rate: int, rng: np.random.Generator,
                      cache: _AudioCache) -> np.ndarray:
    fade = int(CROSSFADE_SECONDS * rate)
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    track = np.zeros(0)
    while track.size < length:
        piece = cache.get(pool[int(rng.integers(len(pool)))], rate, trim=False)
        piece = piece * (UTTERANCE_RMS / max(float(rms(piece)), 1e-9))
        if track.size >= fade and piece.size > 2 * fade:
            joint = track[-fade:] * (1 - ramp) + piece[:fade] * ramp
            track = np.concatenate([track[:-fade], joint, piece[fade:]])
        else:
            track = np.concatenate([track, piece])
    return track[:length]


def _loudness(meter, audio: np.ndarray) -> float:
    value = float(meter.integrated_loudness(np.asarray(audio, dtype=np.float64)))
    if not np.isfinite(value):
        raise ValueError("a scene stem has no measurable loudness (silent); check its recordings")
    return value


def scene_table(manifest: dict) -> pd.DataFrame:
    """One row per scene of a manifest (id, ratio, rate, channels, levels, lines)."""
    return pd.DataFrame([{k: v for k, v in entry.items() if k not in ("dialogue_lines", "sha256")}
                         | {"lines": len(entry["dialogue_lines"])} for entry in manifest["scenes"]])
