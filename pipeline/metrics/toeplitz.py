"""Symmetric block-Toeplitz linear systems by the block Levinson recursion (Whittle / Wiggins-Robinson), in numba.

BSS-Eval's least-squares distortion filters solve normal equations whose matrix is the Gram matrix of a few
signals delayed by 0 .. n-1 samples: with the unknowns ordered by delay, a symmetric block-Toeplitz matrix
T[a, c] = R(c - a) (S x S blocks, R(-k) = R(k)^T, R(k) the signals' correlations at lag k). The recursion solves
T x = y in O(n^2 S^3) operations instead of a dense factorisation's O(n^3 S^3) (n = 512: ~100x fewer), and the
autocorrelation method's matrices are positive definite, the case where it is as accurate as Cholesky
(Cybenko 1980). Loops are compiled by numba (already a librosa dependency), innermost over delays, contiguous.

Layouts: `lags` is (S, S, n) with lags[i, j, k] = R(k)[i, j]; right-hand sides and solutions are (S, K, n):
[source, column, delay].
"""
from __future__ import annotations

import numba
import numpy as np

# Reassociation lets the compiler vectorise the inner dot products; the results stay deterministic on one CPU.
_FASTMATH = {"reassoc", "contract"}


@numba.njit(cache=True, boundscheck=False)
def _inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a small (S, S) matrix by Gauss-Jordan elimination with partial pivoting."""
    size = matrix.shape[0]
    work = matrix.copy()
    inverse = np.eye(size)
    for col in range(size):
        pivot = col
        for row in range(col + 1, size):
            if abs(work[row, col]) > abs(work[pivot, col]):
                pivot = row
        if pivot != col:
            for k in range(size):
                work[col, k], work[pivot, k] = work[pivot, k], work[col, k]
                inverse[col, k], inverse[pivot, k] = inverse[pivot, k], inverse[col, k]
        scale = work[col, col]
        for k in range(size):
            work[col, k] /= scale
            inverse[col, k] /= scale
        for row in range(size):
            if row != col:
                factor = work[row, col]
                if factor != 0.0:
                    for k in range(size):
                        work[row, k] -= factor * work[col, k]
                        inverse[row, k] -= factor * inverse[col, k]
    return inverse


@numba.njit(cache=True, boundscheck=False)
def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(p, q) @ (q, r) for tiny matrices, without a BLAS call's overhead."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            value = a[i, j]
            for k in range(b.shape[1]):
                out[i, k] += value * b[j, k]
    return out


@numba.njit(cache=True, fastmath=_FASTMATH, boundscheck=False)
def _solve_one(lags: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve T x = rhs for one system: lags (S, S, n), rhs (S, K, n) -> x (S, K, n).

    Keeps the first and last block columns of T_m^-1 (forward X, backward Y) for growing m, and the solution
    of the leading m x m system; each step extends all three by one delay.
    """
    sources, _, n = lags.shape
    columns = rhs.shape[1]
    behind = np.empty((sources, sources, n))  # behind[i, j, t] = R(n - 1 - t)[i, j]: lags read backwards
    for i in range(sources):
        for j in range(sources):
            for t in range(n):
                behind[i, j, t] = lags[i, j, n - 1 - t]
    fwd = np.zeros((sources, sources, n))
    bwd = np.zeros((sources, sources, n))
    fwd_next = np.zeros((sources, sources, n))
    bwd_next = np.zeros((sources, sources, n))
    x = np.zeros((sources, columns, n))
    first = _inverse(lags[:, :, 0].copy())
    for i in range(sources):
        for k in range(sources):
            fwd[i, k, 0] = first[i, k]
            bwd[i, k, 0] = first[i, k]
        for k in range(columns):
            total = 0.0
            for j in range(sources):
                total += first[i, j] * rhs[j, k, 0]
            x[i, k, 0] = total
    err_f = np.empty((sources, sources))
    err_b = np.empty((sources, sources))
    err_x = np.empty((sources, columns))
    eye = np.eye(sources)
    for m in range(1, n):
        offset = n - 1 - m
        # what the extended forward, backward and solution vectors leave in the new last / first block row
        for i in range(sources):
            for k in range(sources):
                total_f = 0.0
                total_b = 0.0
                for j in range(sources):
                    for c in range(m):
                        total_f += behind[j, i, offset + c] * fwd[j, k, c]
                        total_b += lags[i, j, c + 1] * bwd[j, k, c]
                err_f[i, k] = total_f
                err_b[i, k] = total_b
            for k in range(columns):
                total = 0.0
                for j in range(sources):
                    for c in range(m):
                        total += behind[j, i, offset + c] * x[j, k, c]
                err_x[i, k] = total
        keep_f = _inverse(eye - _matmul(err_b, err_f))
        keep_b = _inverse(eye - _matmul(err_f, err_b))
        mix_f = -_matmul(err_f, keep_f)
        mix_b = -_matmul(err_b, keep_b)
        for i in range(sources):
            for k in range(sources):
                for c in range(m + 1):
                    fwd_next[i, k, c] = 0.0
                    bwd_next[i, k, c] = 0.0
                for j in range(sources):
                    a, b, p, q = keep_f[j, k], mix_b[j, k], mix_f[j, k], keep_b[j, k]
                    for c in range(m):
                        fwd_next[i, k, c] += fwd[i, j, c] * a
                        bwd_next[i, k, c] += fwd[i, j, c] * b
                    for c in range(1, m + 1):
                        fwd_next[i, k, c] += bwd[i, j, c - 1] * p
                        bwd_next[i, k, c] += bwd[i, j, c - 1] * q
        fwd, fwd_next = fwd_next, fwd
        bwd, bwd_next = bwd_next, bwd
        for k in range(columns):
            for j in range(sources):
                gap = rhs[j, k, m] - err_x[j, k]
                for i in range(sources):
                    for c in range(m + 1):
                        x[i, k, c] += bwd[i, j, c] * gap
    return x


@numba.njit(cache=True, boundscheck=False)
def _solve_many(lags: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    out = np.empty(rhs.shape)
    for b in range(lags.shape[0]):
        out[b] = _solve_one(lags[b], rhs[b])
    return out


def solve_block_toeplitz(lags: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve B symmetric positive-definite block-Toeplitz systems: lags (B, S, S, n), rhs (B, S, K, n).

    lags[b, i, j, k] = R_b(k)[i, j] defines T_b[a, c] = R_b(c - a) (R(-k) = R(k)^T); returns x (B, S, K, n)
    with T_b x_b = rhs_b. Indefinite or singular systems give non-finite or inaccurate results: callers check.
    """
    lags = np.ascontiguousarray(lags, dtype=np.float64)
    rhs = np.ascontiguousarray(rhs, dtype=np.float64)
    if lags.ndim != 4 or lags.shape[1] != lags.shape[2] or rhs.ndim != 4 or rhs.shape[:2] != lags.shape[:2] \
            or rhs.shape[3] != lags.shape[3]:
        raise ValueError(f"lags must be (B, S, S, n) and rhs (B, S, K, n); got {lags.shape} and {rhs.shape}")
    return _solve_many(lags, rhs)
