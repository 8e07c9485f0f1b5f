"""Stereo: separate the mid (L+R)/2 or each channel? Measured on the demo's stereo test scenes (data/scenes).

For every 2-channel scene of `scenes@<dataset>` (after `dvc repro` or `dvc checkout`), the registry's default model
runs through `enhance`'s remixer with each plan; the dialogue stem is scored against the true dialogue (SI-SDR,
mean over the two channels) and its improvement over the mixture; medians per plan. Writes
benchmarks/results/stereo.json. Usage: ./run.sh python -m benchmarks.bench_stereo
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipeline.enhance.layouts import STEREO_MODES, plan_channels
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.registry import DEFAULT_REGISTRY, resolve_model
from pipeline.enhance.remix import Remixer
from pipeline.metrics.remix import stem_si_sdr
from pipeline.mixing.scenes import read_scene

RESULTS = Path(__file__).resolve().parent / "results"


def dialogue_of(masker, mixture: np.ndarray, rate: int, mode: str) -> np.ndarray:
    remixer = Remixer(masker, rate, ("FL", "FR"), plan_channels(("FL", "FR"), stereo=mode), keep_loudness=False,
                      streaming=True)
    parts = []
    for start in range(0, len(mixture), 10 * rate):
        parts += [remixer.render(x, d)["dialogue"] for x, d in remixer.analyse(mixture[start:start + 10 * rate])]
    parts += [remixer.render(x, d)["dialogue"] for x, d in remixer.finish_analysis()]
    remixer.close()
    return np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=Path, nargs="+", default=[Path("data/scenes/d2"), Path("data/scenes/d3")])
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    args = parser.parse_args()
    model, dialogue_classes, kind = resolve_model(None, None, args.registry)
    masker = DialogueMasker.load(model, dialogue_classes, kind=kind)
    rows = []
    for folder in sorted(p for root in args.scenes for p in root.iterdir() if p.is_dir()):
        dialogue, background, rate = read_scene(folder)
        if dialogue.shape[1] != 2:
            continue
        mixture = dialogue + background
        base = stem_si_sdr(dialogue, mixture)
        row = {"scene": str(folder), "mixture_si_sdr": base}
        for mode in STEREO_MODES:
            row[mode] = stem_si_sdr(dialogue, dialogue_of(masker, mixture, rate, mode)) - base
        rows.append(row)
        print(f"{folder}: " + ", ".join(f"{m} {row[m]:+.2f} dB" for m in STEREO_MODES))
    summary = {mode: float(np.median([r[mode] for r in rows])) for mode in STEREO_MODES}
    print(f"median dialogue SI-SDRi over {len(rows)} stereo scenes (model {model}): " +
          ", ".join(f"{m} {v:+.2f} dB" for m, v in summary.items()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stereo.json").write_text(json.dumps({"model": str(model), "median_si_sdri_db": summary,
                                                     "scenes": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
