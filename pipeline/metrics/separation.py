"""Source-separation metrics as pure functions: BSS-Eval (SDR/SIR/SAR), SI-SDR, narrow-band PESQ.

Shapes: a mixture has S sources of L samples; `references` and `estimates` are (S, L), one estimate per
reference in the same (known) order, so BSS-Eval runs with `compute_permutation=False`, unless the caller says
the order is unknown (`score_many(..., permutation=True)`: mir_eval's permutation search). `mixture` is (L,).

BSS-Eval is `pipeline.metrics.bss_batch`: the decomposition of `mir_eval.separation.bss_eval_sources` batched
over mixtures in torch float64 with a block-Levinson solver (mir_eval 0.8.2 is the cross-check in the tests,
agreeing to < 1e-6 dB, and the yardstick of `benchmarks/bench_metrics`). Scoring runs with one thread per
process (BLAS, torch); use `score_many(parallel=...)` to parallelise across mixtures, so the scores never
depend on the map.

Failure policy (what `score_mixture` records; nothing raises for bad *estimates*, bad *inputs* raise):

- A source is "silent" when the RMS of its mean-removed signal is below `SILENCE_RMS` (1e-6).
- Each source gets a status, the first problem found in this order: `silent_reference` (its reference is
  silent), `nonfinite_estimate` (its estimate holds NaN/inf), `silent_estimate` (its estimate is silent),
  else `ok`.
- Any non-ok source makes BSS-Eval undefined for the whole mixture (its projections use every reference and
  mir_eval refuses silent signals): every source of that mixture gets sdr = sir = sar = NaN. Sources of that
  mixture whose status is `ok` keep their SI-SDR and PESQ, which are per-source.
- SI-SDR is NaN when the reference or the estimate is silent or the estimate is non-finite; si_sdr_mixture
  (the unprocessed mixture used as the estimate) is NaN only when the reference or the mixture is silent;
  si_sdri = si_sdr - si_sdr_mixture (NaN if either is).
- PESQ (narrow band, after resampling to 8 kHz) is computed only for speech sources; it is NaN for non-speech
  sources, for non-ok statuses, and whenever the PESQ library returns an error code (e.g. no utterances
  detected, buffer too short) or raises. Error codes are never kept as scores.
- S = 1: mir_eval's SIR is +inf by definition (no interfering source); we record it as NaN, not inf.
  SDR and SAR are defined and kept (they coincide).
- dB values are clipped to +-`MAX_DB` (200 dB), so a perfect estimate scores 200 dB rather than inf.
- NaN values are never averaged: `summarise` computes means/medians over finite values only, reports how
  many values each statistic used (`<metric>_count`), and counts failures (`n_failed`, `n_pesq_failed`).

Beside them, seed 004's perceptual figures (`pipeline.metrics.spectral`): `spectral_snr` (dB, clipped to MAX_DB)
and `envelope_distance`, per source, NaN unless the source's status is ok.

Bad inputs (wrong shapes, (L, S) instead of (S, L), non-finite references or mixture, speech flags of the
wrong length) raise ValueError naming what was received.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd

from pipeline.metrics.bss_batch import bss_eval_batch
from pipeline.metrics.spectral import envelope_distance, spectral_snr
from pipeline.parallel import Inline, ParallelMap

logger = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_SILENT_REFERENCE = "silent_reference"
STATUS_SILENT_ESTIMATE = "silent_estimate"
STATUS_NONFINITE = "nonfinite_estimate"

SILENCE_RMS = 1e-6
MAX_DB = 200.0
PESQ_RATE = 8000
BSS_METRICS = ("sdr", "sir", "sar")
METRICS = ("sdr", "sir", "sar", "si_sdr", "si_sdri", "pesq", "spectral_snr", "envelope_distance")
SUMMARY_METRICS = ("sdr", "sir", "sar", "si_sdr", "si_sdr_mixture", "si_sdri", "pesq", "pesq_mixture", "spectral_snr",
                   "envelope_distance")
ROW_COLUMNS = ("mixture_id", "source", "index", "speech", "status", "sdr", "sir", "sar", "si_sdr",
               "si_sdr_mixture", "si_sdri", "pesq", "pesq_mixture", "spectral_snr", "envelope_distance")

WORKER_PRELOAD = ("pipeline.metrics.separation", "pipeline.metrics.bss_batch", "pipeline.metrics.toeplitz", "pesq",
                  "soxr")
BSS_BATCH = 32  # mixtures per BSS-Eval call (bounds memory: ~10 MB per 2-source 1-s mixture)

Item = tuple[str, np.ndarray, np.ndarray, np.ndarray, Sequence[bool], Sequence[str]]


# ------------------------------------------------------------------------------------------------------------
# Validation and small helpers


def validate(references: np.ndarray, estimates: np.ndarray) -> None:
    """Check references and estimates are both (S, L) with S >= 1, L >= 1, and references are finite.

    Estimates may be non-finite or silent: that is a scoring outcome (see the module's policy), not bad input.
    Raises ValueError naming the shapes received and the problem.
    """
    references, estimates = np.asarray(references), np.asarray(estimates)
    for name, array in (("references", references), ("estimates", estimates)):
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D (sources, samples); got shape {array.shape}")
        if array.shape[0] < 1 or array.shape[1] < 1:
            raise ValueError(f"{name} must have at least one source and one sample; got shape {array.shape}")
        if array.shape[0] > array.shape[1]:
            raise ValueError(
                f"{name} has shape {array.shape}: more sources than samples, which looks like (samples, sources);"
                f" pass (sources, samples), e.g. {name}.T"
            )
    if references.shape != estimates.shape:
        raise ValueError(
            f"references and estimates must have the same shape (sources, samples); "
            f"got references {references.shape} and estimates {estimates.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(references).all(axis=1))
    if bad.size:
        raise ValueError(f"references must be finite; sources {bad.tolist()} hold NaN or inf "
                         f"(references shape {references.shape})")


def _check_signal(name: str, signal: np.ndarray, length: int | None = None) -> np.ndarray:
    """Return `signal` as a 1-D float64 array, or raise ValueError if it is not (L,) [with L == length]."""
    signal = np.asarray(signal)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"{name} must be 1-D (samples,); got shape {signal.shape}")
    if length is not None and signal.size != length:
        raise ValueError(f"{name} must have {length} samples to match the references; got shape {signal.shape}")
    return signal.astype(np.float64, copy=False)


def _rms(signal: np.ndarray) -> float:
    """RMS of the mean-removed signal; (L,) -> float (NaN if the signal is non-finite)."""
    signal = np.asarray(signal, dtype=np.float64)
    return float(np.sqrt(np.mean((signal - signal.mean()) ** 2)))


def is_silent(signal: np.ndarray) -> bool:
    """True when the mean-removed RMS of a finite (L,) signal is below SILENCE_RMS."""
    return bool(_rms(signal) < SILENCE_RMS)


def source_status(reference: np.ndarray, estimate: np.ndarray) -> str:
    """Status of one (L,) reference/estimate pair: the first problem found, or STATUS_OK."""
    if is_silent(reference):
        return STATUS_SILENT_REFERENCE
    if not np.isfinite(estimate).all():
        return STATUS_NONFINITE
    if is_silent(estimate):
        return STATUS_SILENT_ESTIMATE
    return STATUS_OK


def _clip_db(values: np.ndarray) -> np.ndarray:
    """Clip dB values to +-MAX_DB, keeping NaN as NaN."""
    return np.clip(np.asarray(values, dtype=np.float64), -MAX_DB, MAX_DB)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread and one torch thread inside the block (restored after)."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------------------------
# Metrics


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB of an (L,) estimate against an (L,) reference, both mean-removed first.

    NaN when the reference or the estimate is silent or the estimate is non-finite; clipped to +-MAX_DB.
    """
    reference = _check_signal("reference", reference)
    estimate = _check_signal("estimate", estimate, reference.size)
    if not np.isfinite(reference).all():
        raise ValueError(f"reference must be finite (shape {reference.shape})")
    if not np.isfinite(estimate).all() or is_silent(reference) or is_silent(estimate):
        return math.nan
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    scale = np.dot(estimate, reference) / np.dot(reference, reference)
    target = scale * reference
    noise = estimate - target
    target_energy = float(np.dot(target, target))
    noise_energy = float(np.dot(noise, noise))
    if target_energy == 0.0:  # estimate orthogonal to the reference
        return -MAX_DB
    if noise_energy == 0.0:
        return MAX_DB
    return float(_clip_db(10.0 * np.log10(target_energy / noise_energy)))


def bss_eval(references: np.ndarray, estimates: np.ndarray, device: str | None = None) -> dict[str, np.ndarray]:
    """BSS-Eval v3 (512-tap distortion filters) of (S, L) estimates against (S, L) references, order fixed.

    Returns {"sdr", "sir", "sar"}, each (S,) float64 in dB, as mir_eval computes them (for S = 1 the SIR is
    +inf; `score_mixture` records it as NaN). Raises ValueError for bad shapes, non-finite references, and for
    silent references or silent/non-finite estimates, for which BSS-Eval is undefined.
    """
    validate(references, estimates)
    references = np.asarray(references, dtype=np.float64)
    estimates = np.asarray(estimates, dtype=np.float64)
    problems = [(s, source_status(references[s], estimates[s])) for s in range(references.shape[0])]
    problems = [(s, status) for s, status in problems if status != STATUS_OK]
    if problems:
        raise ValueError(f"BSS-Eval is undefined for sources {problems} (shape {references.shape})")
    with _one_thread():
        values = bss_eval_batch(references[None], estimates[None], device=device)
    return {name: values[name][0] for name in BSS_METRICS}


def pesq_nb(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    """Narrow-band PESQ (MOS-LQO) of an (L,) estimate against an (L,) reference sampled at `rate` Hz.

    Both are resampled to 8 kHz with soxr ("HQ"). Returns NaN, never raises, when PESQ is undefined: silent or
    non-finite input, an error code from the library (no utterances, buffer too short, ...), or an exception.
    Only wrong shapes (not (L,) and (L,)) raise ValueError, as everywhere in this module.
    """
    reference = _check_signal("reference", reference)
    estimate = _check_signal("estimate", estimate, reference.size)
    try:
        if not (np.isfinite(reference).all() and np.isfinite(estimate).all()):
            return math.nan
        if is_silent(reference) or is_silent(estimate):
            return math.nan
        ref8, est8 = _resample(reference, rate), _resample(estimate, rate)
        from pesq import PesqError, pesq

        score = float(pesq(PESQ_RATE, ref8, est8, "nb", on_error=PesqError.RETURN_VALUES))
    except Exception as error:  # noqa: BLE001 - PESQ must never take a run down
        logger.debug("PESQ failed (%s: %s); recording NaN", type(error).__name__, error)
        return math.nan
    if not math.isfinite(score) or score < 0.0:  # MOS-LQO >= ~1.02; negatives are PesqError codes
        logger.debug("PESQ returned error code %s; recording NaN", score)
        return math.nan
    return score


def _resample(signal: np.ndarray, rate: int) -> np.ndarray:
    """Resample an (L,) float64 signal from `rate` Hz to PESQ_RATE with soxr HQ; returns (L * 8000 / rate,)."""
    if rate == PESQ_RATE:
        return signal
    import soxr

    return soxr.resample(signal, rate, PESQ_RATE, quality="HQ")


# ------------------------------------------------------------------------------------------------------------
# One mixture


def score_mixture(
    references: np.ndarray,
    estimates: np.ndarray,
    mixture: np.ndarray,
    rate: int,
    speech: Sequence[bool],
) -> list[dict]:
    """Score one mixture: (S, L) references and estimates, (L,) mixture, S speech flags.

    Returns S dicts (index, status, sdr, sir, sar, si_sdr, si_sdr_mixture, si_sdri, pesq, pesq_mixture),
    following the module's failure policy. Raises ValueError only for bad inputs.
    """
    with _one_thread():
        checked = _Checked.of(references, estimates, mixture, speech)
        return checked.rows(rate, _bss_of([checked])[0])


class _Checked:
    """One mixture's validated float64 arrays, speech flags and per-source statuses."""

    def __init__(self, references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray, speech: list[bool],
                 statuses: list[str]):
        self.references, self.estimates, self.mixture = references, estimates, mixture
        self.speech, self.statuses = speech, statuses

    @classmethod
    def of(cls, references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray,
           speech: Sequence[bool]) -> "_Checked":
        """Validate one mixture's inputs (ValueError for bad ones) and find each source's status."""
        validate(references, estimates)
        references = np.asarray(references, dtype=np.float64)
        estimates = np.asarray(estimates, dtype=np.float64)
        n_sources, length = references.shape
        mixture = _check_signal("mixture", mixture, length)
        if not np.isfinite(mixture).all():
            raise ValueError(f"mixture must be finite (shape {mixture.shape})")
        speech = [bool(flag) for flag in speech]
        if len(speech) != n_sources:
            raise ValueError(f"speech needs one flag per source: got {len(speech)} flags for {n_sources} sources")
        statuses = [source_status(references[s], estimates[s]) for s in range(n_sources)]
        return cls(references, estimates, mixture, speech, statuses)

    @property
    def scorable(self) -> bool:
        """BSS-Eval is defined: every source's status is ok."""
        return all(status == STATUS_OK for status in self.statuses)

    def rows(self, rate: int, bss: dict[str, np.ndarray], known: Sequence[tuple[float, float]] | None = None
             ) -> list[dict]:
        """The S rows of this mixture given its BSS-Eval values ((S,) arrays, NaN when not scorable) and, when
        known, each source's (si_sdr_mixture, pesq_mixture)."""
        if known is not None and len(known) != len(self.statuses):
            raise ValueError(f"{len(known)} known mixture scores for {len(self.statuses)} sources")
        return [_score_source(s, self.statuses[s], self.references[s], self.estimates[s], self.mixture, rate,
                              self.speech[s], bss, None if known is None else tuple(known[s]))
                for s in range(len(self.statuses))]


def _bss_of(mixtures: Sequence[_Checked], device: str | None = None, permutation: bool = False
            ) -> list[dict[str, np.ndarray]]:
    """BSS-Eval of every mixture, batched over those of one shape; all-NaN (S,) arrays where not scorable.

    Values are clipped to +-MAX_DB, and the SIR of a one-source mixture is NaN (no interferer: mir_eval's +inf
    is not a score). `permutation`: the estimates come in no known order; each scorable mixture's estimates are
    reordered in place to the assignment with the best mean SIR (mir_eval's rule), so SI-SDR, PESQ and the
    spectral figures score the same pairs (a mixture BSS-Eval cannot score keeps its output order)."""
    results: list[dict[str, np.ndarray]] = [
        {name: np.full(len(m.statuses), np.nan) for name in BSS_METRICS} for m in mixtures]
    groups: dict[tuple[int, ...], list[int]] = {}
    for position, mixture in enumerate(mixtures):
        if mixture.scorable:
            groups.setdefault(mixture.references.shape, []).append(position)
    for shape, positions in groups.items():
        for start in range(0, len(positions), BSS_BATCH):
            batch = positions[start:start + BSS_BATCH]
            values = bss_eval_batch(np.stack([mixtures[p].references for p in batch]),
                                    np.stack([mixtures[p].estimates for p in batch]), device=device,
                                    permutation=permutation)
            for row, position in enumerate(batch):
                if permutation:
                    order = values["permutation"][row]
                    mixtures[position].estimates = mixtures[position].estimates[order]
                results[position] = {name: _clip_db(values[name][row]) for name in BSS_METRICS}
                if shape[0] == 1:
                    results[position]["sir"] = np.full(1, np.nan)
    return results


def _score_source(
    index: int,
    status: str,
    reference: np.ndarray,
    estimate: np.ndarray,
    mixture: np.ndarray,
    rate: int,
    speech: bool,
    bss: dict[str, np.ndarray],
    known: tuple[float, float] | None = None,
) -> dict:
    """The row of one source; reference, estimate and mixture are (L,). `known`: its (si_sdr_mixture,
    pesq_mixture), when another system already scored the same mixture (they depend on the mixture only)."""
    ok = status == STATUS_OK
    value = si_sdr(reference, estimate) if ok else math.nan
    if known is None:
        known = (si_sdr(reference, mixture) if status != STATUS_SILENT_REFERENCE else math.nan,
                 pesq_nb(reference, mixture, rate) if speech and status != STATUS_SILENT_REFERENCE else math.nan)
    baseline, pesq_mixture = known
    return {
        "index": index,
        "status": status,
        **{name: float(bss[name][index]) for name in BSS_METRICS},
        "si_sdr": value,
        "si_sdr_mixture": baseline,
        "si_sdri": value - baseline,
        "pesq": pesq_nb(reference, estimate, rate) if speech and ok else math.nan,
        "pesq_mixture": pesq_mixture,
        "spectral_snr": min(spectral_snr(reference, estimate), MAX_DB) if ok else math.nan,
        "envelope_distance": envelope_distance(reference, estimate) if ok else math.nan,
    }


# ------------------------------------------------------------------------------------------------------------
# Many mixtures


def _checked_item(item: Item) -> _Checked:
    """Validate one item (mixture_id, references (S, L), estimates (S, L), mixture (L,), speech (S,), names (S,))."""
    mixture_id, references, estimates, mixture, speech, names = item
    try:
        checked = _Checked.of(references, estimates, mixture, speech)
        if len(list(names)) != checked.references.shape[0]:
            raise ValueError(f"{len(list(names))} source names for references of shape {checked.references.shape}")
        return checked
    except ValueError as error:
        raise ValueError(f"mixture {mixture_id!r}: {error}") from error


def score_many(
    items: Iterable[Item],
    rate: int,
    parallel: ParallelMap | None = None,
    chunk: int = 16,
    progress: bool = False,
    device: str | None = None,
    known: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    permutation: bool = False,
) -> pd.DataFrame:
    """Score many mixtures; one row per (mixture, source), in input order whichever `parallel` map runs it.

    items: (mixture_id, references (S, L), estimates (S, L), mixture (L,), speech flags (S,), names (S,)).
    Columns: ROW_COLUMNS. Items are scored `chunk` at a time, each chunk one task of `parallel` (default:
    inline; `parallel_map(..., preload=WORKER_PRELOAD)` starts process workers with the metric libraries
    imported). Every item runs with one BLAS thread, so the scores do not depend on the map. `device`: where
    BSS-Eval runs (default CPU; "cuda" batches each chunk on the GPU). `known`: per mixture id, each source's
    (si_sdr_mixture, pesq_mixture) from an earlier call on the same mixtures (`mixture_scores`), not recomputed:
    every system of a test split shares them, and the mixture's PESQ is half of all PESQ work. `permutation`:
    the estimates of an item come in no known order; each is scored against the reference of the assignment
    with the best mean SIR over all S! (mir_eval's `compute_permutation=True`).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1; got {chunk}")
    from tqdm import tqdm

    parallel = parallel or Inline()
    known = known or {}
    tasks = [(c, [known.get(item[0]) for item in c]) for c in _chunks(items, chunk)]
    rows: list[dict] = []
    with tqdm(total=sum(len(c) for c, _ in tasks), desc="score", unit="mixture", disable=not progress) as bar:
        score = partial(_score_task, rate=rate, device=device, permutation=permutation)
        for chunk_rows in parallel.map(score, tasks, task="score"):
            for item_rows in chunk_rows:
                rows.extend(item_rows)
                bar.update(1)
    frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    logger.info("scored %d sources of %d mixtures (%d not ok)", len(frame),
                frame["mixture_id"].nunique(), int((frame["status"] != STATUS_OK).sum()))
    return frame


def score_chunk(items: Sequence[Item], rate: int, device: str | None = None,
                known: Sequence[Sequence[tuple[float, float]] | None] | None = None,
                permutation: bool = False) -> list[list[dict]]:
    """The rows of each item of a chunk (one task of `score_many`): BSS-Eval batched over the chunk; `known`:
    per item, its sources' (si_sdr_mixture, pesq_mixture) or None; `permutation`: see `score_many`."""
    known = known or [None] * len(items)
    with _one_thread():
        checked = [_checked_item(item) for item in items]
        bss = _bss_of(checked, device, permutation)
        rows = []
        for item, mixture, values, mixture_known in zip(items, checked, bss, known):
            mixture_id, names = item[0], list(item[5])
            rows.append([{"mixture_id": mixture_id, "source": names[row["index"]],
                          "speech": mixture.speech[row["index"]], **row}
                         for row in mixture.rows(rate, values, mixture_known)])
        return rows


def _score_task(task: tuple[Sequence[Item], Sequence[Sequence[tuple[float, float]] | None]], rate: int,
                device: str | None, permutation: bool = False) -> list[list[dict]]:
    items, known = task
    return score_chunk(items, rate, device, known, permutation)


def mixture_scores(frame: pd.DataFrame) -> dict[str, list[tuple[float, float]]]:
    """Per mixture id of a `score_many` frame: each source's (si_sdr_mixture, pesq_mixture), in index order
    (the `known` of a later call on the same mixtures)."""
    ordered = frame.sort_values(["mixture_id", "index"], kind="stable")
    return {mixture_id: list(zip(group["si_sdr_mixture"].tolist(), group["pesq_mixture"].tolist()))
            for mixture_id, group in ordered.groupby("mixture_id", sort=False)}


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# ------------------------------------------------------------------------------------------------------------
# Summary


def summarise(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group of `by`: n_sources, n_failed, n_pesq_failed, and <metric>_median/_mean/_count of finite values.

    n_failed counts rows whose status is not ok; n_pesq_failed counts speech rows whose pesq is NaN.
    Metrics are SUMMARY_METRICS present in `frame`; a statistic with no finite value is NaN (count 0).
    """
    by = list(by)
    missing = [column for column in (*by, "status") if column not in frame.columns]
    if missing:
        raise ValueError(f"summarise: columns {missing} not in frame (columns: {list(frame.columns)})")
    metrics = [name for name in SUMMARY_METRICS if name in frame.columns]
    records = []
    for key, group in frame.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        records.append({**dict(zip(by, key)), **_summarise_group(group, metrics)})
    columns = by + ["n_sources", "n_failed", "n_pesq_failed"] + [
        f"{name}_{stat}" for name in metrics for stat in ("median", "mean", "count")]
    return pd.DataFrame(records, columns=columns)


def _summarise_group(group: pd.DataFrame, metrics: Sequence[str]) -> dict:
    """Counts and finite-only statistics of one group's rows."""
    speech = group["speech"].astype(bool) if "speech" in group.columns else pd.Series(False, index=group.index)
    pesq = group["pesq"] if "pesq" in group.columns else pd.Series(np.nan, index=group.index)
    summary = {
        "n_sources": len(group),
        "n_failed": int((group["status"] != STATUS_OK).sum()),
        "n_pesq_failed": int((speech & pesq.isna()).sum()),
    }
    for name in metrics:
        values = group[name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        summary[f"{name}_median"] = float(np.median(values)) if values.size else math.nan
        summary[f"{name}_mean"] = float(np.mean(values)) if values.size else math.nan
        summary[f"{name}_count"] = int(values.size)
    return summary
