"""`python -m pipeline.generation`: new sounds from any trained VAE file, outside DVC (the stage's work)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.config import load_params
from pipeline.generation.run import generate_variant


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("model", type=Path, help="a model file written by train (data/models/<dataset>/<variant>/model.pt)")
    args.add_argument("--mixtures", type=Path, required=True,
                      help="the model's mixture dataset (data/mixtures/<dataset>, with train/ and test/)")
    args.add_argument("--out", type=Path, required=True, help="folder for the WAVs, gallery.json and metrics.json")
    args.add_argument("--reference", type=Path, default=None,
                      help="model whose encoder gives the Fréchet features (default: the model itself)")
    args.add_argument("--name", default=None, help="name in the metric keys (default: the model's folder name)")
    args.add_argument("--params", default="params.yaml", help="its `generate` and `stft` sections are used")
    ns = args.parse_args(argv)
    params = load_params(ns.params)
    if params.generate is None:
        raise SystemExit(f"{ns.params} has no `generate` section (samples, temperature, Griffin-Lim iterations, ...)")
    metrics = generate_variant(ns.name or ns.model.parent.name, ns.model, ns.reference or ns.model,
                               ns.mixtures / "train", ns.mixtures / "test", params.generate, params.stft, ns.out)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
