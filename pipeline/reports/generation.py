"""Generation in the report (seed 001): its metrics, a table per variant, a gallery, and the seed's claim.

Reads what `generate@<variant>` wrote to `<generation>/<variant>/`: `metrics.json` (keys `generate.<variant>.…`)
and `gallery.json` (the WAV files of a few samples per class and of one latent walk).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import soundfile as sf

from pipeline.config import Params
from pipeline.reports import html as H
from pipeline.reports.figures import log_spectrogram, save_spectrogram

log = logging.getLogger(__name__)


@dataclass
class Generation:
    variant: str
    folder: Path
    metrics: dict[str, Any]
    gallery: dict[str, Any]


def read_generations(folder: Path, params: Params) -> dict[str, Generation]:
    """Every variant of `generate.variants` with its outputs; a missing one is logged and left out."""
    found = {}
    for variant in (params.generate.variants if params.generate else {}):
        path = folder / variant
        if not (path / "metrics.json").is_file():
            log.warning("generation of %s: no %s; the report leaves it out", variant, path / "metrics.json")
            continue
        metrics = json.loads((path / "metrics.json").read_text())
        bad = [key for key in metrics if not key.startswith(f"generate.{variant}.")]
        if bad:
            raise ValueError(f"{path / 'metrics.json'}: key {bad[0]!r} does not start with 'generate.{variant}.'")
        found[variant] = Generation(variant, path, metrics, json.loads((path / "gallery.json").read_text()))
    return found


def merge_generation_metrics(generations: Mapping[str, Generation]) -> dict[str, Any]:
    return {key: value for g in generations.values() for key, value in g.metrics.items()}


def generation_claims(params: Params, metrics: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(claim, seed, ours, key, note) rows: each VAE against its AE ablation on the same dataset (seed 001: the VAE's
    latent space generates recognisable classes, the AE's does not)."""
    if params.generate is None:
        return []
    rows = []
    kinds = {name: params.variants[name].model for name in params.generate.variants}
    for vae in (n for n, kind in kinds.items() if kind == "vae"):
        for ae in (n for n, kind in kinds.items() if kind == "ae"):
            acc = [metrics.get(f"generate.{n}.accuracy", math.nan) for n in (vae, ae)]
            fd = [metrics.get(f"generate.{n}.frechet", math.nan) for n in (vae, ae)]
            floor = metrics.get(f"generate.{vae}.frechet_real", math.nan)
            rows.append((f"Generation: classes recognised in samples, {vae} vs its AE ablation {ae}",
                         "VAE recognisable, AE not (seed 001)", f"{acc[0]:.0%} vs {acc[1]:.0%}",
                         f"generate.{vae}.accuracy", "judge: logistic regression on real training clips; "
                         + ("VAE ahead" if acc[0] > acc[1] else "VAE not ahead")))
            rows.append((f"Generation: Fréchet distance to real test clips, {vae} vs {ae}",
                         "VAE closer (seed 001)", f"{fd[0]:.1f} vs {fd[1]:.1f}", f"generate.{vae}.frechet",
                         f"real training clips: {floor:.1f}; " + ("VAE closer" if fd[0] < fd[1] else "VAE not closer")))
    return rows


def generation_section(params: Params, generations: Mapping[str, Generation], site: Path, out: Path) -> str:
    """The page's section: per variant a table (judge accuracy and Fréchet distance per class) and the gallery."""
    settings = params.generate
    body = [f"<p>New sounds drawn from each model (seed 001): z ~ N(0, {settings.temperature:g}² I) through each "
            f"class's decoder, audio by Griffin-Lim ({settings.griffin_lim_iterations} iterations), {settings.samples} "
            f"per class. <em>Judged right</em>: share the judge (logistic regression on the mean log spectrum of real "
            f"training clips) labels as the class asked for; <em>Fréchet</em>: distance between the latent means of "
            f"generated and real test clips under {H.esc(settings.reference)}'s encoder (lower is closer; the row "
            f"<em>real</em> compares real training clips with the test clips).</p>"]
    for variant, g in generations.items():
        classes = g.gallery["classes"]
        m = g.metrics
        def cell(key: str, form: str) -> str:
            value = m.get(f"generate.{variant}.{key}")
            return "—" if value is None else format(value, form)

        rows = [[c, cell(f"{c}.accuracy", ".0%"), cell(f"{c}.frechet", ".2f")] for c in classes]
        rows.append(["all", cell("accuracy", ".0%"), cell("frechet", ".2f")])
        rows.append(["real", cell("judge_real_accuracy", ".0%"), cell("frechet_real", ".2f")])
        body.append(f"<h3>{H.esc(variant)} ({H.esc(params.variants[variant].model.upper())})</h3>")
        body.append(H.table(["class", "judged right", "Fréchet"], rows))
        for name, items in g.gallery["samples"].items():
            clips = [_clip(g, item["file"], f"sample {i + 1} (judged: {item['judged']})", site, out)
                     for i, item in enumerate(items)]
            body.append(H.clip_row(name, clips))
        walk = g.gallery.get("interpolation") or {}
        if walk.get("files"):
            body.append(H.clip_row(f"walk ({walk['class']})", [
                _clip(g, file, f"step {i + 1} of {len(walk['files'])}", site, out)
                for i, file in enumerate(walk["files"])]))
    return H.section("generation", "Generating new sounds", "\n".join(body))


def _clip(g: Generation, file: str, caption: str, site: Path, out: Path) -> str:
    """Copy one WAV into the site with its spectrogram image; the player's HTML."""
    signal, rate = sf.read(str(g.folder / file), dtype="float64")
    wav = site / "generation" / g.variant / file
    png = wav.with_suffix(".png")
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(wav), signal, rate, subtype="PCM_16", format="WAV")
    spectrogram = log_spectrogram(signal)
    save_spectrogram(spectrogram, png, top_db=float(spectrogram.max()))
    return H.clip(caption, wav.relative_to(out).as_posix(), png.relative_to(out).as_posix())
