"""DVC stage `generate@<variant>`: new sounds from a trained VAE (seed 001), their audio and their measures."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import load_params
from pipeline.generation.run import generate_variant
from stages.common import parser, setup_logging, stage_clock


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("variant", help="a variant of params.yaml generate.variants")
    args.add_argument("--models", type=Path, default=Path("data/models"), help="data/models (<dataset>/<variant>)")
    args.add_argument("--mixtures", type=Path, default=Path("data/mixtures"), help="mix outputs (<dataset>/<split>)")
    args.add_argument("--out", type=Path, required=True)
    ns = args.parse_args(argv)
    setup_logging()
    params = load_params(ns.params)
    settings = params.generate
    if settings is None or ns.variant not in settings.variants:
        known = sorted(settings.variants) if settings else []
        raise SystemExit(f"generate: variant {ns.variant!r} is not in params.yaml generate.variants {known}")
    dataset = settings.variants[ns.variant].dataset
    with stage_clock(f"generate@{ns.variant}"):
        generate_variant(ns.variant, ns.models / dataset / ns.variant / "model.pt",
                         ns.models / dataset / settings.reference / "model.pt", ns.mixtures / dataset / "train",
                         ns.mixtures / dataset / "test", settings, params.stft, ns.out)


if __name__ == "__main__":
    main()
