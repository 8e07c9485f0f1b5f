"""BSS-Eval v3 (SDR, SIR, SAR with time-invariant distortion filters) batched over mixtures, in torch float64.

The same decomposition as `mir_eval.separation.bss_eval_sources` (Vincent et al. 2006; mir_eval 0.8.2 is the
cross-check in tests/metrics/test_bss_eval.py, not the engine): an estimate e is projected by least squares onto
the span of every reference delayed by 0 .. `filter_length` - 1 samples (P_all e) and onto the delays of its own
reference j alone (P_j e), over the L + filter_length - 1 samples of the zero-padded signals; then

    SDR = |P_j e|^2 / |e - P_j e|^2,   SIR = |P_j e|^2 / |P_all e - P_j e|^2,   SAR = |P_all e|^2 / |e - P_all e|^2.

What makes it fast: the Gram matrix of the delayed references is one Toeplitz-block matrix per mixture, built
from FFT correlations without a Python loop, shared by all of a mixture's estimates and factorised once
(batched Cholesky; LU, then least squares, for the mixtures where it fails, as mir_eval falls back); every
(estimate, reference) pair comes from the same factorisations, so the permutation search costs only a few more
right-hand sides. Runs on CPU or CUDA; on CPU each matrix is factorised by LAPACK on its own, so a mixture's
scores do not depend on which other mixtures share its batch.

Inputs are assumed valid (finite, not silent: `pipeline.metrics.separation` checks and applies the failure
policy); values are in dB, +inf where a residual is exactly zero (as mir_eval's `_safe_db`).
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import scipy.fft
import torch

FILTER_LENGTH = 512  # taps of the distortion filter: BSS-Eval v3's (and mir_eval's) standard


def bss_eval_batch(references: np.ndarray | torch.Tensor, estimates: np.ndarray | torch.Tensor, *,
                   permutation: bool = False, filter_length: int = FILTER_LENGTH,
                   device: str | torch.device | None = None, solver: str = "auto") -> dict[str, np.ndarray]:
    """BSS-Eval of (B, S, L) estimates against (B, S, L) references: B mixtures of S sources of L samples.

    Returns {"sdr", "sir", "sar"} as (B, S) float64 arrays indexed by reference, and "permutation" (B, S) int:
    the estimate scored against each reference. Known order (`permutation=False`): estimate s for reference s.
    `permutation=True`: per mixture, the assignment with the highest mean SIR over all S! (mir_eval's rule;
    ties go to the first in `itertools.permutations` order). `device`: where to compute (default CPU).
    `solver`: "levinson" (block Levinson, O(n^2): the CPU default), "dense" (Cholesky of the Gram matrix: the
    GPU default) or "auto"; both give the same scores to ~1e-10 dB.
    """
    device = torch.device(device or "cpu")
    refs, ests = _as_float64(references, device), _as_float64(estimates, device)
    if refs.ndim != 3 or refs.shape != ests.shape:
        raise ValueError(f"references and estimates must both be (mixtures, sources, samples); got "
                         f"{tuple(refs.shape)} and {tuple(ests.shape)}")
    if filter_length < 1:
        raise ValueError(f"filter_length must be >= 1; got {filter_length}")
    if solver not in ("auto", "levinson", "dense"):
        raise ValueError(f"solver must be auto, levinson or dense; got {solver!r}")
    if solver == "auto":
        solver = "levinson" if device.type == "cpu" else "dense"
    sdr, sir, sar = _pairwise(refs, ests, filter_length, solver)  # each (B, S_est, S_ref)
    batch, sources = refs.shape[:2]
    if permutation:
        order = _best_permutations(sir)
    else:
        order = torch.arange(sources, device=device).expand(batch, sources)
    pick = order[:, :, None]  # (B, S_ref, 1): the estimate of each reference

    def select(values: torch.Tensor) -> np.ndarray:
        by_reference = values.transpose(1, 2)  # (B, S_ref, S_est)
        return torch.gather(by_reference, 2, pick)[:, :, 0].cpu().numpy()

    return {"sdr": select(sdr), "sir": select(sir), "sar": select(sar), "permutation": order.cpu().numpy()}


def _as_float64(values: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if not torch.is_tensor(values):
        values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
    return values.to(device=device, dtype=torch.float64)


def _pairwise(refs: torch.Tensor, ests: torch.Tensor, taps: int, solver: str) -> tuple[torch.Tensor, ...]:
    """SDR, SIR, SAR of every estimate against every reference: three (B, S_est, S_ref) tensors in dB."""
    batch, sources, length = refs.shape
    padded = length + taps - 1
    n_fft = scipy.fft.next_fast_len(padded, real=True)  # >= padded: correlations are exact linear ones
    ref_spec = torch.fft.rfft(refs, n_fft)  # (B, S, F)
    est_spec = torch.fft.rfft(ests, n_fft)
    delays = torch.arange(taps, device=refs.device)
    # corr[b, i, j, k] = sum_t r_i(t + k) r_j(t) = R(k)[i, j]: the Gram block G_ij[a, c] is corr_ij[c - a]
    corr = torch.fft.irfft(ref_spec[:, :, None] * ref_spec[:, None].conj(), n_fft)  # (B, S, S, n_fft)
    # rhs[b, i, m, d] = <r_i delayed d, e_m> = sum_t r_i(t - d) e_m(t)
    rhs = _lagged_correlation(ref_spec, est_spec, n_fft, delays)  # (B, S_ref, S_est, taps)

    if solver == "levinson":
        filters_all, filters_own = _filters_levinson(corr[..., :taps], rhs)
    else:
        filters_all, filters_own = _filters_dense(corr, rhs, taps, n_fft)
    proj_all, proj_own = _projections(filters_all, filters_own, ref_spec, n_fft, padded)
    est_padded = torch.nn.functional.pad(ests, (0, taps - 1))
    if solver == "levinson":
        # an exact projection leaves a residual orthogonal to it; where not (an unstable solve), that mixture
        # is solved again by dense factorisation
        bad = _unsolved(est_padded, proj_all, proj_own)
        if bool(bad.any()):
            dense_all, dense_own = _filters_dense(corr[bad], rhs[bad], taps, n_fft)
            proj_all[bad], proj_own[bad] = _projections(dense_all, dense_own, ref_spec[bad], n_fft, padded)

    est_padded = est_padded[:, :, None]  # (B, S_est, 1, padded)
    all_padded = proj_all[:, :, None]
    energy = lambda signal: (signal**2).sum(dim=-1)  # noqa: E731 - local shorthand
    own_energy = energy(proj_own)
    sdr = _db(own_energy, energy(est_padded - proj_own))
    sir = _db(own_energy, energy(all_padded - proj_own))
    sar = _db(energy(all_padded).expand_as(own_energy), energy(est_padded - all_padded).expand_as(own_energy))
    return sdr, sir, sar


def _lagged_correlation(ref_spec: torch.Tensor, signal_spec: torch.Tensor, n_fft: int, delays: torch.Tensor
                        ) -> torch.Tensor:
    """[b, i, m, d] = sum_t r_i(t - d) s_m(t) for spectra (B, S, F) of references and (B, M, F) of signals."""
    cross = torch.fft.irfft(ref_spec[:, :, None] * signal_spec[:, None].conj(), n_fft)  # (B, S, M, n_fft)
    return cross[..., (-delays) % n_fft]


def _filters_levinson(lags: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distortion filters (B, S_ref, S_est, taps) for P_all and for each reference's own P_j, by block Levinson.

    lags (B, S, S, taps) = R(k); rhs (B, S_ref, S_est, taps)."""
    from pipeline.metrics.toeplitz import solve_block_toeplitz

    batch, sources, _, taps = lags.shape
    lags_np, rhs_np = lags.cpu().numpy(), rhs.cpu().numpy()
    filters_all = solve_block_toeplitz(lags_np, rhs_np)
    index = np.arange(sources)
    own_lags = lags_np[:, index, index].reshape(batch * sources, 1, 1, taps)
    own_rhs = rhs_np.reshape(batch * sources, 1, sources, taps)
    filters_own = solve_block_toeplitz(own_lags, own_rhs).reshape(batch, sources, sources, taps)
    return torch.from_numpy(filters_all).to(lags.device), torch.from_numpy(filters_own).to(lags.device)


def _filters_dense(corr: torch.Tensor, rhs: torch.Tensor, taps: int, n_fft: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The same filters as `_filters_levinson` from the dense Gram matrix (Cholesky; the GPU path and fallback)."""
    batch, sources = corr.shape[:2]
    lagged = torch.cat([corr[..., n_fft - taps + 1:], corr[..., :taps]], dim=-1)  # [k + taps - 1] = corr[k]
    windows = lagged.unfold(-1, taps, 1)  # [s, c] = corr[s + c - taps + 1]; row s = taps - 1 - a is block row a
    gram = torch.empty(batch, sources, taps, sources, taps, dtype=corr.dtype, device=corr.device)
    for i, j in itertools.product(range(sources), repeat=2):
        gram[:, i, :, j, :] = windows[:, i, j].flip(-2)
    gram = gram.reshape(batch, sources * taps, sources * taps)
    by_delay = rhs.transpose(2, 3)  # (B, S_ref, taps, S_est)
    solution, factor = _solve(gram, by_delay.reshape(batch, sources * taps, sources))
    filters_all = solution.reshape(batch, sources, taps, sources).transpose(2, 3)
    filters_own = torch.empty_like(by_delay)
    for j in range(sources):  # the diagonal blocks; the leading one's factor is the full factor's leading block
        if j == 0 and factor is not None:
            filters_own[:, 0] = torch.cholesky_solve(by_delay[:, 0], factor[:, :taps, :taps])
        else:
            block = gram[:, j * taps:(j + 1) * taps, j * taps:(j + 1) * taps]
            filters_own[:, j] = _solve(block, by_delay[:, j])[0]
    return filters_all, filters_own.transpose(2, 3)


def _projections(filters_all: torch.Tensor, filters_own: torch.Tensor, ref_spec: torch.Tensor, n_fft: int,
                 padded: int) -> tuple[torch.Tensor, torch.Tensor]:
    """P_all e_m (B, S_est, padded) and P_j e_m (B, S_est, S_ref, padded) from (B, S_ref, S_est, taps) filters."""
    spec_all = torch.fft.rfft(filters_all, n_fft) * ref_spec[:, :, None]  # (B, S_ref, S_est, F)
    proj_all = torch.fft.irfft(spec_all.sum(dim=1), n_fft)[..., :padded]
    spec_own = torch.fft.rfft(filters_own, n_fft) * ref_spec[:, :, None]
    proj_own = torch.fft.irfft(spec_own, n_fft)[..., :padded].transpose(1, 2)
    return proj_all, proj_own


def _unsolved(est_padded: torch.Tensor, proj_all: torch.Tensor, proj_own: torch.Tensor) -> torch.Tensor:
    """(B,) True where a projection is non-finite or its residual is not orthogonal to it: |<e - Pe, Pe>| above
    1e-9 |e|^2 (rounding leaves ~1e-14; a solve that went wrong leaves far more)."""
    est_energy = (est_padded**2).sum(dim=-1)  # (B, S_est)
    leak_all = ((est_padded - proj_all) * proj_all).sum(dim=-1).abs()  # (B, S_est)
    leak_own = ((est_padded[:, :, None] - proj_own) * proj_own).sum(dim=-1).abs().amax(dim=2)
    worst = torch.maximum(leak_all, leak_own) / est_energy
    finite = torch.isfinite(proj_all).all(dim=(1, 2)) & torch.isfinite(proj_own).all(dim=(1, 2, 3))
    return ~finite | ~(worst <= 1e-9).all(dim=1)


def _db(signal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """10 log10(signal / noise); +inf where the noise energy is exactly zero."""
    ratio = 10.0 * torch.log10(signal / noise)
    return torch.where(noise == 0, torch.full_like(ratio, float("inf")), ratio)


def _solve(matrices: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Solve (B, n, n) SPD Gram systems for (B, n, k) right-hand sides: Cholesky where it succeeds, else LU,
    else least squares (a singular Gram matrix: references whose delays are linearly dependent).

    Returns the solutions and the (B, n, n) Cholesky factors, or None for the factors when any failed."""
    factor, info = torch.linalg.cholesky_ex(matrices)
    solution = torch.cholesky_solve(rhs, factor)
    failed = info != 0
    if not bool(failed.any()):
        return solution, factor
    lu_solution, lu_info = torch.linalg.solve_ex(matrices[failed], rhs[failed])
    singular = lu_info != 0
    if bool(singular.any()):
        fallback = torch.linalg.lstsq(matrices[failed][singular].cpu(), rhs[failed][singular].cpu()).solution
        lu_solution[singular] = fallback.to(lu_solution.device)
    solution[failed] = lu_solution
    return solution, None


def _best_permutations(sir: torch.Tensor) -> torch.Tensor:
    """(B, S_ref) index of the estimate for each reference maximising the mean SIR; sir is (B, S_est, S_ref)."""
    sources = sir.shape[1]
    perms = torch.tensor(list(itertools.permutations(range(sources))), device=sir.device)  # (P, S)
    reference = torch.arange(sources, device=sir.device)
    mean_sir = sir[:, perms, reference].mean(dim=2)  # (B, P): sir[b, perm[j], j] averaged over j
    return perms[torch.argmax(mean_sir, dim=1)]


def mir_eval_bss_eval(references: np.ndarray, estimates: np.ndarray, permutation: bool = False
                      ) -> dict[str, np.ndarray]:
    """The reference implementation: `mir_eval.separation.bss_eval_sources` on one (S, L) mixture.

    Used by the tests and `benchmarks/bench_metrics` to cross-check and time the batched engine; returns
    {"sdr", "sir", "sar", "permutation"}, each (S,).
    """
    import mir_eval.separation

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"mir_eval\.separation\.bss_eval_sources", category=FutureWarning)
        sdr, sir, sar, perm = mir_eval.separation.bss_eval_sources(
            np.asarray(references, dtype=np.float64), np.asarray(estimates, dtype=np.float64),
            compute_permutation=permutation)
    return {"sdr": np.asarray(sdr), "sir": np.asarray(sir), "sar": np.asarray(sar), "permutation": np.asarray(perm)}
