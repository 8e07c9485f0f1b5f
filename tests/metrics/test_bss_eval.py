"""The batched BSS-Eval engine against mir_eval 0.8.2 (to 1e-6 dB), its two solvers, and its block-Toeplitz solver."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.signal
from threadpoolctl import threadpool_limits

from pipeline.metrics import bss_batch as engine
from pipeline.metrics import separation as sep
from pipeline.metrics.toeplitz import solve_block_toeplitz

RATE = 8600
TOLERANCE_DB = 1e-6


def _coloured(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Noise through a one-pole low-pass (a 26 dB spectral tilt): coloured, yet well-conditioned."""
    return scipy.signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(shape), axis=-1)


def _resampled(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Noise resampled from 16 kHz to 8.6 kHz as `prepare` does (soxr HQ): empty above ~0.9 x Nyquist, like every
    clip of the pipeline. Such references make the delay Gram matrix numerically rank-deficient."""
    import soxr

    long = rng.standard_normal((*shape[:-1], int(shape[-1] * 16000 / RATE) + 64))
    flat = long.reshape(-1, long.shape[-1])
    return np.stack([soxr.resample(row, 16000, RATE, quality="HQ")[:shape[-1]] for row in flat]).reshape(shape)


def _case(kind: str, sources: int, batch: int = 2, length: int = 3000, seed: int = 0):
    """(B, S, L) references and estimates of one kind: white, coloured, resampled or silent-ish (RMS ~1e-5)."""
    rng = np.random.default_rng(seed + 10 * sources)
    if kind == "white":
        references = rng.standard_normal((batch, sources, length))
    elif kind == "coloured":
        references = _coloured(rng, (batch, sources, length))
    elif kind == "resampled":
        references = _resampled(rng, (batch, sources, length))
    else:  # silent-ish: far below full scale, yet above the silence threshold of the scoring policy
        references = 1e-5 * rng.standard_normal((batch, sources, length))
    mixing = np.eye(sources) + 0.3 * rng.random((sources, sources))
    estimates = np.einsum("ij,bjl->bil", mixing, references)
    estimates = scipy.signal.lfilter([1.0, 0.4, -0.2], [1.0], estimates, axis=-1)  # an allowed distortion
    estimates += 0.1 * references.std() * rng.standard_normal(estimates.shape)
    return references, estimates


def _mir_eval(references: np.ndarray, estimates: np.ndarray, permutation: bool) -> dict[str, np.ndarray]:
    with threadpool_limits(1):  # multi-threaded BLAS on a busy 2-core machine is many times slower
        results = [engine.mir_eval_bss_eval(r, e, permutation) for r, e in zip(references, estimates)]
    return {name: np.stack([r[name] for r in results]) for name in ("sdr", "sir", "sar", "permutation")}


@pytest.mark.parametrize("solver", ["levinson", "dense"])
@pytest.mark.parametrize(("kind", "sources"), [("white", 2), ("coloured", 2), ("silent-ish", 2), ("coloured", 3),
                                               ("white", 1), ("resampled", 2)])
def test_matches_mir_eval_in_known_order(solver, kind, sources):
    references, estimates = _case(kind, sources)
    got = engine.bss_eval_batch(references, estimates, solver=solver)
    expected = _mir_eval(references, estimates, permutation=False)
    # Resampled audio leaves the Gram matrix numerically rank-deficient: there mir_eval's own LU solve and any
    # other exact-arithmetic-equivalent solver disagree at ~1e-5 dB (measured on the demo's test mixtures too).
    tolerance = 1e-4 if kind == "resampled" else TOLERANCE_DB
    for name in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=tolerance, err_msg=name)
    np.testing.assert_array_equal(got["permutation"], np.broadcast_to(np.arange(sources), got["permutation"].shape))


@pytest.mark.parametrize("sources", [2, 3])
def test_permutation_search_matches_mir_eval(sources):
    references, estimates = _case("coloured", sources, batch=3, length=2500, seed=5)
    rng = np.random.default_rng(sources)
    orders = [rng.permutation(sources) for _ in range(len(estimates))]
    shuffled = np.stack([e[order] for e, order in zip(estimates, orders)])
    got = engine.bss_eval_batch(references, shuffled, permutation=True)
    expected = _mir_eval(references, shuffled, permutation=True)
    np.testing.assert_array_equal(got["permutation"], expected["permutation"])
    for b, order in enumerate(orders):  # estimate order[j] came from reference j: the search undoes the shuffle
        np.testing.assert_array_equal(got["permutation"][b], np.argsort(order))
    for name in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=TOLERANCE_DB, err_msg=name)


def test_a_mixture_scores_the_same_alone_and_in_a_batch():
    references, estimates = _case("coloured", 2, batch=5, seed=3)
    together = engine.bss_eval_batch(references, estimates)
    for b in range(len(references)):
        alone = engine.bss_eval_batch(references[b:b + 1], estimates[b:b + 1])
        for name in ("sdr", "sir", "sar"):
            assert alone[name][0].tolist() == together[name][b].tolist(), name


def test_perfect_estimates_score_inf_like_mir_eval():
    references, _ = _case("white", 2, batch=1)
    got = engine.bss_eval_batch(references, references.copy())
    assert (got["sdr"] > 100).all() and (got["sar"] > 100).all()


def test_levinson_failures_fall_back_to_the_dense_solver(monkeypatch):
    references, estimates = _case("coloured", 2, batch=3, seed=8)
    dense = engine.bss_eval_batch(references, estimates, solver="dense")
    real = solve_block_toeplitz

    def broken_for_mixture_1(lags, rhs):
        solution = real(lags, rhs)
        solution[1 * (len(lags) // len(references))] = np.nan  # mixture 1 of P_all (or its first own system)
        return solution

    monkeypatch.setattr("pipeline.metrics.toeplitz.solve_block_toeplitz", broken_for_mixture_1)
    got = engine.bss_eval_batch(references, estimates, solver="levinson")
    for name in ("sdr", "sir", "sar"):
        assert np.isfinite(got[name]).all(), name
        np.testing.assert_allclose(got[name], dense[name], rtol=0, atol=TOLERANCE_DB, err_msg=name)


def test_rejects_bad_arguments():
    references, estimates = _case("white", 2, batch=1)
    with pytest.raises(ValueError, match=r"\(mixtures, sources, samples\)"):
        engine.bss_eval_batch(references[0], estimates[0])
    with pytest.raises(ValueError, match="solver must be"):
        engine.bss_eval_batch(references, estimates, solver="qr")


@pytest.mark.parametrize("sources", [1, 2, 3])
def test_block_toeplitz_solver_matches_a_dense_solve(sources):
    rng = np.random.default_rng(sources)
    taps, columns = 64, 2
    signals = _coloured(rng, (2, sources, 600))
    lags = np.empty((2, sources, sources, taps))
    for b, i, j in itertools.product(range(2), range(sources), range(sources)):  # R(k)[i, j] = sum_t s_i(t+k) s_j(t)
        full = np.correlate(signals[b, i], signals[b, j], mode="full")
        lags[b, i, j] = full[signals.shape[-1] - 1:][:taps]
    rhs = rng.standard_normal((2, sources, columns, taps))
    got = solve_block_toeplitz(lags, rhs)
    for b in range(2):
        dense = np.empty((taps, sources, taps, sources))  # [a, i, c, j] = R(c - a)[i, j]
        for a, c in itertools.product(range(taps), repeat=2):
            dense[a, :, c, :] = lags[b, :, :, c - a] if c >= a else lags[b, :, :, a - c].T
        solution = np.linalg.solve(dense.reshape(taps * sources, -1),
                                   rhs[b].transpose(2, 0, 1).reshape(taps * sources, columns))
        np.testing.assert_allclose(got[b], solution.reshape(taps, sources, columns).transpose(1, 2, 0),
                                   rtol=1e-8, atol=1e-10 * np.abs(solution).max())


def test_score_many_is_independent_of_the_chunk_size():
    references, estimates = _case("coloured", 2, batch=6, length=RATE, seed=4)
    items = [(f"m{k}", references[k], estimates[k], references[k].sum(axis=0), (False, False), ("a", "b"))
             for k in range(6)]
    one = sep.score_many(items, RATE, chunk=1)
    five = sep.score_many(items, RATE, chunk=5)
    pd.testing.assert_frame_equal(one, five, check_exact=True)
