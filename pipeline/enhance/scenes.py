"""What `enhance` does to long scenes: its own processor, every candidate model, every scene, scored.

The scenes (`pipeline.mixing.scenes`) carry their true dialogue and background stems, so everything a listener
would notice can be measured against them (`pipeline.metrics.remix`): how close the dialogue and background
stems are to the truth (SI-SDR and its improvement over leaving the mixture as it is), how close the remix at
the requested gains is to the ideal remix of the true stems (remix fidelity, beside the mixture's), by how much
the dialogue-to-background ratio really changed (LU; the ideal is the gain difference), and the real-time factor.

Each scene runs through `StreamingEnhancer`, the class the `enhance` command runs, in `block_seconds` blocks as
the command reads files, on the channels the command's default plan gives the model (stereo: the mid); the scenes kept for listening run again in `stream_samples` chunks, as a live stream
would arrive (and give the streaming real-time factor). The two outputs
must agree to float32 rounding (`STREAM_TOLERANCE`: the processor decides by sample counts, never by chunk
boundaries; only the model's batch sizes differ); a larger difference stops the evaluation, it is never
averaged away.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.config import SceneEnhance
from pipeline.enhance.clip_check import GAP_TARGET_DB, ClipCheck, clip_check
from pipeline.enhance.layouts import default_layout, plan_channels
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.stream import Enhanced, StreamingEnhancer, StreamSettings
from pipeline.metrics.remix import ratio_change_db, remix_fidelity, stem_si_sdr
from pipeline.mixing.scenes import load_manifest, ratio_tag, read_scene

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = {
    "model": "model", "ratio": "dialogue/background", "dialogue_si_sdr": "dialogue SI-SDR",
    "dialogue_si_sdri": "dialogue SI-SDRi", "background_si_sdri": "background SI-SDRi",
    "remix_fidelity": "remix fidelity", "mixture_remix_fidelity": "mixture's fidelity",
    "ratio_change_lu": "ratio change (LU)", "scenes": "scenes",
}
STREAM_TOLERANCE = 1e-5  # the model runs on batches of other sizes: float32 rounding, ~1e-7 seen
SCENE_METRICS = ("dialogue_si_sdr", "dialogue_si_sdri", "background_si_sdr", "background_si_sdri",
                 "remix_fidelity", "mixture_remix_fidelity", "remix_fidelity_gain", "ratio_change_lu",
                 "rtf_offline", "rtf_streaming")


@dataclass(frozen=True)
class Candidate:
    """A model `enhance` could use: its name (the variant), file, dialogue classes and separator kind."""

    name: str
    path: Path
    dialogue_classes: tuple[str, ...]
    kind: str

    def masker(self) -> DialogueMasker:
        return DialogueMasker.load(self.path, list(self.dialogue_classes), kind=self.kind)


def enhance_array(masker: DialogueMasker, mixture: np.ndarray, rate: int, settings: SceneEnhance,
                  chunk: int) -> tuple[Enhanced, float]:
    """Run `enhance`'s processor over a (samples, channels) array in chunks, on the channels the command's
    default plan gives the model (stereo: the mid, `layouts.DEFAULT_STEREO`); returns the joined output and the
    seconds it took."""
    plan = plan_channels(default_layout(mixture.shape[1])[1])
    enhancer = StreamingEnhancer(masker, rate, plan.model_channels, dialogue_gain_db=settings.dialogue_gain_db,
                                 background_gain_db=settings.background_gain_db,
                                 update_frames=settings.update_frames, lookahead_frames=settings.lookahead_frames)
    started = time.perf_counter()
    parts = [enhancer.process(plan.select(mixture[i:i + chunk])) for i in range(0, mixture.shape[0], chunk)]
    parts.append(enhancer.flush())
    seconds = time.perf_counter() - started
    joined = Enhanced(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("output", "dialogue",
                                                                                          "background")))
    if plan.model_channels != mixture.shape[1] or plan.indices != tuple(range(mixture.shape[1])):
        # the stems of the processed channels, the rest kept, remixed at the gains as the command remixes them
        dialogue = plan.spread(joined.dialogue, mixture.shape[1])
        background = (mixture - dialogue).astype(np.float32)
        gains = 10 ** (settings.dialogue_gain_db / 20), 10 ** (settings.background_gain_db / 20)
        joined = Enhanced((gains[0] * dialogue + gains[1] * background).astype(np.float32), dialogue, background)
    if joined.output.shape != mixture.shape:
        raise RuntimeError(f"enhance returned {joined.output.shape} samples for an input of {mixture.shape}")
    return joined, seconds


def score_scene(dialogue: np.ndarray, background: np.ndarray, enhanced: Enhanced, settings: SceneEnhance) -> dict:
    """The scene metrics of one enhanced scene against its true stems (dB; ratio change in LU)."""
    mixture = dialogue + background
    gains = (settings.dialogue_gain_db, settings.background_gain_db)
    row = {
        "dialogue_si_sdr": stem_si_sdr(dialogue, enhanced.dialogue),
        "mixture_dialogue_si_sdr": stem_si_sdr(dialogue, mixture),
        "background_si_sdr": stem_si_sdr(background, enhanced.background),
        "mixture_background_si_sdr": stem_si_sdr(background, mixture),
        "remix_fidelity": remix_fidelity(enhanced.output, dialogue, background, *gains),
        "mixture_remix_fidelity": remix_fidelity(mixture, dialogue, background, *gains),
        "ratio_change_lu": ratio_change_db(enhanced.output, dialogue, background),
    }
    row["dialogue_si_sdri"] = row["dialogue_si_sdr"] - row["mixture_dialogue_si_sdr"]
    row["background_si_sdri"] = row["background_si_sdr"] - row["mixture_background_si_sdr"]
    row["remix_fidelity_gain"] = row["remix_fidelity"] - row["mixture_remix_fidelity"]
    return row


def evaluate_scenes(dataset: str, scenes_dir: Path, candidates: Sequence[Candidate], settings: SceneEnhance,
                    *, keep: Sequence[str] = (), progress: bool = True
                    ) -> tuple[pd.DataFrame, dict[tuple[str, str], Enhanced]]:
    """One row per (model, scene): the scene's ratio, rate, channels and every metric of `score_scene`; and the
    enhanced audio of the scenes named in `keep` (also streamed), by (model, scene id), for listening."""
    from tqdm import tqdm

    manifest = load_manifest(scenes_dir)
    rows, kept = [], {}
    jobs = [(candidate, entry) for candidate in candidates for entry in manifest["scenes"]]
    maskers: dict[str, DialogueMasker] = {}
    for candidate, entry in tqdm(jobs, desc=f"scenes {dataset}", unit="scene", disable=not progress):
        if candidate.name not in maskers:
            maskers[candidate.name] = candidate.masker()
        masker = maskers[candidate.name]
        dialogue, background, rate = read_scene(Path(scenes_dir) / entry["scene_id"])
        mixture = dialogue + background
        offline, offline_s = enhance_array(masker, mixture, rate, settings, int(settings.block_seconds * rate))
        stream_s = float("nan")
        if entry["scene_id"] in keep:  # streamed once per model: the check and its real-time factor
            streamed, stream_s = enhance_array(masker, mixture, rate, settings, settings.stream_samples)
            difference = float(np.abs(offline.output - streamed.output).max())
            if not difference <= STREAM_TOLERANCE:
                raise RuntimeError(f"scene {entry['scene_id']}, model {candidate.name}: the streamed output "
                                   f"differs from the offline one by {difference:.3g} (> {STREAM_TOLERANCE:g}); "
                                   f"enhance must not depend on chunk sizes")
            kept[(candidate.name, entry["scene_id"])] = offline
        duration = mixture.shape[0] / rate
        rows.append({"dataset": dataset, "model": candidate.name, "scene_id": entry["scene_id"],
                     "ratio_db": entry["ratio_db"], "sample_rate": rate, "channels": mixture.shape[1],
                     **score_scene(dialogue.astype(np.float64), background.astype(np.float64), offline, settings),
                     "rtf_offline": offline_s / duration, "rtf_streaming": stream_s / duration})
    return pd.DataFrame(rows), kept


def listening_scenes(manifest: dict, ratio_db: float = 0.0) -> list[str]:
    """The scene kept for listening: the first one at `ratio_db` (else the first of all)."""
    at_ratio = [entry["scene_id"] for entry in manifest["scenes"] if entry["ratio_db"] == ratio_db]
    return (at_ratio or [manifest["scenes"][0]["scene_id"]])[:1]


def clip_checks(candidates: Sequence[Candidate], mixtures: np.ndarray, dialogue: np.ndarray, rate: int,
                settings: SceneEnhance) -> dict[str, ClipCheck]:
    """`enhance` against each model alone on the same 1-s test clips (`pipeline.enhance.clip_check`)."""
    stream = StreamSettings(settings.update_frames, settings.lookahead_frames)
    checks = {}
    for candidate in candidates:
        checks[candidate.name] = check = clip_check(candidate.masker(), mixtures, dialogue, rate, stream)
        if not check.on_target:
            log.warning("model %s: enhance scores %.2f dB dialogue SI-SDRi on the 1-s test clips, the model alone "
                        "%.2f dB (gap %.2f dB; target: lose at most %g dB)", candidate.name, np.median(check.enhance),
                        np.median(check.alone), check.gap_db, GAP_TARGET_DB)
    return checks


def clip_table(checks: dict[str, ClipCheck]) -> str:
    """The markdown section of the clip checks."""
    lines = [f"\n## The same models on the 1-s test clips\n",
             f"Dialogue SI-SDRi (median over clips): each clip separated alone (its window on the clip, as the test "
             f"tables score it) and the clips joined into one recording and run through `enhance`'s processor. "
             f"Target: `enhance` loses at most {GAP_TARGET_DB:g} dB.\n",
             "| model | alone | enhance | gap | clips |", "|---|---|---|---|---|"]
    for name, check in sorted(checks.items()):
        m = check.metrics()
        lines.append(f"| {name} | {m['alone_si_sdri']:.2f} | {m['enhance_si_sdri']:.2f} | {m['gap_db']:+.2f} | "
                     f"{len(check.alone)} |")
    return "\n".join(lines) + "\n"


def scene_metrics(dataset: str, scores: pd.DataFrame, clips: dict[str, ClipCheck] | None = None
                  ) -> dict[str, float | None]:
    """metrics.json entries `scenes.<dataset>.<model>.<ratio>.<metric>`: medians over that ratio's scenes
    (every rate and channel layout), rounded to 4 decimals; the real-time factors are kept out (they vary).
    With `clips`, also `scenes.<dataset>.<model>.clips.{alone_si_sdri,enhance_si_sdri,gap_db}`."""
    metrics: dict[str, float | None] = {}
    for model, check in (clips or {}).items():
        for metric, value in check.metrics().items():
            metrics[f"scenes.{dataset}.{model}.clips.{metric}"] = round(value, 4)
    for (model, ratio), group in scores.groupby(["model", "ratio_db"], sort=True):
        for metric in SCENE_METRICS:
            if metric.startswith("rtf"):
                continue
            value = float(np.nanmedian(group[metric].to_numpy(dtype=np.float64)))
            metrics[f"scenes.{dataset}.{model}.{ratio_tag(ratio)}.{metric}"] = (
                None if value != value else round(value, 4))
    return dict(sorted(metrics.items()))


def scene_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, ratio): the medians of `SUMMARY_COLUMNS` over that ratio's scenes, and their count."""
    medians = [c for c in SUMMARY_COLUMNS if c not in ("model", "ratio", "scenes")]
    table = (scores.groupby(["model", "ratio_db"], sort=True)
             .agg(**{c: (c, "median") for c in medians}, scenes=("scene_id", "size")).reset_index())
    table.insert(1, "ratio", table.pop("ratio_db").map(ratio_tag))
    return table
