"""DVC stage `train@<variant>`: train one model variant on its mixture dataset."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import load_params
from pipeline.models.train import train_variant
from stages.common import parser, setup_logging


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("variant")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="model folder (data/models/<variant>)")
    args.add_argument("--reports", type=Path, default=Path("reports/training"), help="curves and summaries")
    args.add_argument("--scratch", type=Path, default=Path("data/checkpoints"),
                      help="resume checkpoints, kept outside the DVC outputs until training finishes")
    ns = args.parse_args(argv)
    setup_logging()
    train_variant(ns.variant, load_params(ns.params), ns.data, ns.out, ns.reports, ns.scratch, progress=not ns.quiet)


if __name__ == "__main__":
    main()
