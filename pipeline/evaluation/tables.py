"""Evaluation tables: a CSV of every statistic and a readable Markdown summary per dataset."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.evaluation.summary import summary_table

MARKDOWN_COLUMNS = {
    "training": "training", "method": "signal estimate", "classes": "classes",
    "sdr_median": "SDR", "sir_median": "SIR", "sar_median": "SAR", "sdri_median": "SDRi", "siri_median": "SIRi",
    "si_sdri_median": "SI-SDRi", "gnsdr": "GNSDR", "gsir": "GSIR", "gsar": "GSAR", "pesq_median": "PESQ",
    "spectral_snr_mean": "spectral SNR", "envelope_distance_mean": "envelope dist.", "label_accuracy": "labels right",
    "n_failed": "failed", "mixtures": "mixtures",
}
PERMUTED_CLASSES = "perm"   # the class-estimate column of rows scored with a permutation search
PRIOR_METHOD = "pgd"        # the signal estimate of the generative-prior rows


def row_notes(table: pd.DataFrame) -> str:
    """What the table's readers need to know about seed 004's rows, when it has any ('' otherwise)."""
    notes = []
    if (table["method"] == PRIOR_METHOD).any():
        notes.append("`gp-vae · pgd · all` (seed 004, generative priors): the class decoders of a trained VAE are "
                     "the generators; their latents start at zero and projected gradient descent fits the sum of the "
                     "generated sources to the mixture under the seed's objective (multi-resolution spectral loss, "
                     "source dissimilarity, mixture correlation, frequency continuity); no class labels, every "
                     "class generator takes part, output k is class k (no permutation search). The same decoders "
                     "as the VAD rows, with another objective.")
    if (table["classes"] == PERMUTED_CLASSES).any():
        notes.append("`<method> · blind · perm` (seed 004's classical baselines: `nmf-blind`, `fastica`, `pca`, "
                     "`kpca`): one channel gives one observation, so the mixture's magnitude spectrogram supplies "
                     "them: its frames are the observations and its bins the features (independent subspace "
                     "analysis); NMF fits atoms to the mixture alone. The components are grouped by k-means on "
                     "their spectral profiles into the mixture's number of sources (given, as in the seed), then "
                     "the Wiener mask. No training, no class labels; the outputs come in no class order, so these "
                     "rows are scored **permutation-invariantly** (the assignment with the best mean SIR), which "
                     "favours them against rows scored in class order; `labels right` does not apply.")
    notes.append("`spectral SNR` and `envelope dist.` (means, as seed 004 reports them; every row has them): "
                 "10·log10 of the reference's over the error's energy of the STFT magnitudes (256-sample Hann "
                 "window, hop 128; phase ignored), and the RMS difference of the Hilbert envelopes (lower is "
                 "better; our clips are RMS-normalised).")
    return "".join(f"{note}\n\n" for note in notes)


def markdown_table(frame: pd.DataFrame, columns: dict[str, str], decimals: dict[str, int] | None = None) -> str:
    """A GitHub-style Markdown table of `columns` (name -> header); floats with 2 decimals (or `decimals` of their
    column), NaN as '—'."""
    decimals = decimals or {}
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in frame.to_dict("records"):
        cells = []
        for column in columns:
            value = row[column]
            if isinstance(value, float):
                cells.append("—" if value != value else f"{value:.{decimals.get(column, 2)}f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(dataset: str, params: Params, scores: pd.DataFrame, tables_dir: Path) -> pd.DataFrame:
    """Write `<dataset>.csv` (all statistics) and `<dataset>.md` (medians, in dB except PESQ) to `tables_dir`."""
    tables_dir = Path(tables_dir)
    tables_dir.mkdir(parents=True, exist_ok=True)
    table = summary_table(scores)
    table.round(4).to_csv(tables_dir / f"{dataset}.csv", index=False)
    classes = ", ".join(params.datasets[dataset].class_names)
    header = (f"# {dataset}: separation of the test split\n\n"
              f"Profile `{params.profile}` (the demo corpus is synthetic: these are not the paper's numbers). "
              f"Classes: {classes}. Medians over sources; SDR/SIR/SAR/SI-SDRi in dB, PESQ narrow band (speech "
              f"classes only). `failed`: sources whose BSS-Eval is undefined (silent or non-finite estimate), kept "
              f"out of the medians. GNSDR / GSIR / GSAR: the global figures of Huang et al. (seed 002), "
              f"length-weighted means over sources of the improvement over the mixture (NSDR) and of SIR / SAR. "
              f"SDRi / SIRi: each source's SDR / SIR minus the unprocessed mixture's (seed 003). Rows whose separator "
              f"returns its estimates in no known order (deep clustering, SCE, DPCL++ and seed 004's classical "
              f"baselines: `permutation` in systems.json) are scored after BSS-Eval's permutation search (mir_eval's "
              f"rule, highest mean SIR). "
              f"`labels right`: share of mixtures whose class set was estimated exactly. `spectral SNR` (dB) and "
              f"`envelope dist.`: seed 004's perceptual figures, means over sources (below).\n\n")
    body = markdown_table(table, MARKDOWN_COLUMNS, {"envelope_distance_mean": 3})
    (tables_dir / f"{dataset}.md").write_text(header + row_notes(table) + body)
    return table
