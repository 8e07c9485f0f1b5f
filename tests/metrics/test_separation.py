"""Separation metrics on tiny synthetic signals, with BSS-Eval cross-checked against an independent implementation."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from pipeline.metrics import separation as sep
from pipeline.parallel import LocalPool

RATE = 8600
LENGTH = 8600
FILTER_TAPS = 512  # BSS-Eval v3's allowed distortion filter length


# ------------------------------------------------------------------------------------------------------------
# Synthetic signals


def _noise(rng: np.random.Generator, sources: int, length: int = LENGTH, scale: float = 0.1) -> np.ndarray:
    """(sources, length) independent Gaussian noise, float64."""
    return scale * rng.standard_normal((sources, length))


def _sine(freq: float, length: int = LENGTH, amplitude: float = 0.1) -> np.ndarray:
    """(length,) sine at `freq` Hz."""
    return amplitude * np.sin(2 * np.pi * freq * np.arange(length) / RATE)


def _speech_like(seconds: float = 2.0) -> np.ndarray:
    """(RATE * seconds,) harmonic series with a gliding pitch and syllable-like on/off envelope, float32."""
    t = np.arange(int(RATE * seconds)) / RATE
    f0 = 130 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * 1.8 * t), 0, None) ** 0.6
    return (0.3 * envelope * voice / np.abs(voice).max()).astype(np.float32)


def _with_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """signal + white noise at `snr_db` (power ratio), float64."""
    noise = rng.standard_normal(signal.shape)
    noise *= np.sqrt(np.mean(signal.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return signal + noise


# ------------------------------------------------------------------------------------------------------------
# An independent BSS-Eval (Vincent, Gribonval & Fevotte 2006, time-invariant 512-tap filters):
# explicit delay matrices and QR projections in the time domain (mir_eval solves normal equations built from
# FFT correlations).


def _delay_matrix(sources: np.ndarray, taps: int) -> np.ndarray:
    """(S, L) -> (L + taps - 1, S * taps): column i * taps + d is source i delayed by d samples."""
    n_sources, length = sources.shape
    matrix = np.zeros((length + taps - 1, n_sources * taps))
    for i in range(n_sources):
        for delay in range(taps):
            matrix[delay:delay + length, i * taps + delay] = sources[i]
    return matrix


def _project(matrix: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Orthogonal projection of `target` onto the column span of `matrix` (full column rank), via QR."""
    with threadpool_limits(limits=1):  # multi-threaded BLAS is many times slower on a busy machine
        basis, _ = np.linalg.qr(matrix)
        return basis @ (basis.T @ target)


def _reference_bss_eval(references: np.ndarray, estimates: np.ndarray, taps: int = FILTER_TAPS) -> dict:
    """SDR, SIR, SAR (S,) of (S, L) estimates in the known order, from the decomposition
    estimate = s_target + e_interf + e_artif, where s_target is the projection onto delays of its own reference
    and s_target + e_interf the projection onto delays of all references."""
    n_sources, length = references.shape
    all_delays = _delay_matrix(references, taps)
    out = {"sdr": [], "sir": [], "sar": []}
    for j in range(n_sources):
        estimate = np.concatenate([estimates[j], np.zeros(taps - 1)])
        own = _project(_delay_matrix(references[j:j + 1], taps), estimate)
        every = _project(all_delays, estimate)
        interference, artefacts = every - own, estimate - every

        def ratio(num: np.ndarray, den: np.ndarray) -> float:
            return 10 * np.log10(np.sum(num**2) / np.sum(den**2))

        out["sdr"].append(ratio(own, interference + artefacts))
        out["sir"].append(ratio(own, interference))
        out["sar"].append(ratio(every, artefacts))
    return {name: np.array(values) for name, values in out.items()}


# ------------------------------------------------------------------------------------------------------------
# Basic properties


def test_perfect_estimate_scores_very_high():
    references = _noise(np.random.default_rng(1), 2)
    rows = sep.score_mixture(references, references.copy(), references.sum(axis=0), RATE, [False, False])
    for row in rows:
        assert row["status"] == sep.STATUS_OK
        for name in ("sdr", "sir", "sar", "si_sdr"):
            assert 100 < row[name] <= sep.MAX_DB, (name, row[name])


def test_mixture_as_estimate_gives_zero_improvement():
    references = _noise(np.random.default_rng(2), 2)
    mixture = references.sum(axis=0)
    rows = sep.score_mixture(references, np.stack([mixture, mixture]), mixture, RATE, [False, False])
    for row in rows:
        assert row["si_sdri"] == 0.0
        assert row["si_sdr"] == row["si_sdr_mixture"]
        assert abs(row["si_sdr"]) < 1.0  # two equal-power sources: about 0 dB


def test_si_sdr_is_scale_and_offset_invariant():
    rng = np.random.default_rng(3)
    reference = _sine(440.0)
    estimate = reference + 0.05 * rng.standard_normal(LENGTH)
    base = sep.si_sdr(reference, estimate)
    assert sep.si_sdr(reference, 3.0 * estimate) == pytest.approx(base, abs=1e-9)
    assert sep.si_sdr(reference, 0.2 * estimate + 0.5) == pytest.approx(base, abs=1e-9)


def test_si_sdr_matches_closed_form_for_orthogonal_noise():
    rng = np.random.default_rng(4)
    reference = rng.standard_normal(LENGTH)
    reference -= reference.mean()
    noise = rng.standard_normal(LENGTH)
    noise -= noise.mean()
    noise -= noise @ reference / (reference @ reference) * reference  # exactly orthogonal to the reference
    noise *= np.linalg.norm(reference) / np.linalg.norm(noise) * 10 ** (-12.0 / 20)  # 12 dB below
    assert sep.si_sdr(reference, reference + noise) == pytest.approx(12.0, abs=1e-9)


# ------------------------------------------------------------------------------------------------------------
# BSS-Eval cross-checks against an explicit time-domain implementation (mir_eval: tests/metrics/test_bss_eval.py)


@pytest.mark.parametrize("n_sources", [2, 3])
def test_bss_eval_matches_independent_time_domain_bss_eval(n_sources):
    rng = np.random.default_rng(10 + n_sources)
    length = 1500  # short: the independent implementation solves an explicit (L + 511, S * 512) least squares
    references = _noise(rng, n_sources, length)
    references[0] = np.convolve(references[0], [1.0, 0.6, -0.3], mode="same")  # coloured, not just white
    mixing = np.eye(n_sources) + 0.2 * rng.random((n_sources, n_sources))
    estimates = mixing @ references + _noise(rng, n_sources, length, scale=0.02)
    estimates[1] = np.convolve(estimates[1], [0.9, 0.2], mode="same")  # an allowed filter distortion
    got = sep.bss_eval(references, estimates)
    expected = _reference_bss_eval(references, estimates)
    for name in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_sdr_equals_snr_for_reference_plus_independent_noise():
    rng = np.random.default_rng(20)
    references = _noise(rng, 2)
    noise = _noise(rng, 2, scale=0.1 * 10 ** (-10.0 / 20))  # 10 dB below each reference
    scores = sep.bss_eval(references, references + noise)
    snr = 10 * np.log10(np.sum(references**2, axis=1) / np.sum(noise**2, axis=1))
    # The 512-tap projection absorbs ~512 / L of the noise, raising SDR by ~0.25 dB: hence 0.5 dB.
    np.testing.assert_allclose(scores["sdr"], snr, atol=0.5)


def test_sir_of_filtered_reference_plus_interferer():
    rng = np.random.default_rng(21)
    references = _noise(rng, 2)
    filtered = np.convolve(references[0], [0.8, -0.4, 0.2])[:LENGTH]  # exactly an allowed distortion
    interferer = 0.1 * references[1]
    estimates = np.stack([filtered + interferer, references[1]])
    scores = sep.bss_eval(references, estimates)
    expected_sir = 10 * np.log10(np.sum(filtered**2) / np.sum(interferer**2))
    assert scores["sir"][0] == pytest.approx(expected_sir, abs=0.5)
    assert scores["sar"][0] > 30.0  # only the truncated filter tail lies outside the references' span


def test_single_source_sir_is_inf_in_bss_eval_and_nan_in_score_mixture():
    rng = np.random.default_rng(22)
    references = _noise(rng, 1)
    estimates = _with_noise(references, 10.0, rng)
    raw = sep.bss_eval(references, estimates)
    assert np.isinf(raw["sir"][0])
    (row,) = sep.score_mixture(references, estimates, references[0], RATE, [False])
    assert row["status"] == sep.STATUS_OK
    assert math.isnan(row["sir"])
    assert math.isfinite(row["sdr"]) and row["sdr"] == pytest.approx(row["sar"])
    assert row["sdr"] == pytest.approx(10.0, abs=0.5)


# ------------------------------------------------------------------------------------------------------------
# Bad inputs raise ValueError


@pytest.mark.parametrize(
    ("references", "estimates", "message"),
    [
        (np.ones((LENGTH, 2)), np.ones((LENGTH, 2)), r"looks like \(samples, sources\)"),
        (np.ones((2, LENGTH)), np.ones((2, LENGTH - 1)), r"same shape.*\(2, 8600\).*\(2, 8599\)"),
        (np.ones((2, LENGTH)), np.ones((3, LENGTH)), r"same shape"),
        (np.ones(LENGTH), np.ones(LENGTH), r"2-D.*\(8600,\)"),
        (np.ones((0, LENGTH)), np.ones((0, LENGTH)), r"at least one source"),
        (np.array([[1.0, np.nan, 1.0]] * 2), np.ones((2, 3)), r"references must be finite; sources \[0, 1\]"),
    ],
)
def test_validate_rejects_bad_shapes_and_values(references, estimates, message):
    with pytest.raises(ValueError, match=message):
        sep.validate(references, estimates)
    with pytest.raises(ValueError, match=message):
        sep.score_mixture(references, estimates, np.ones(references.shape[-1]), RATE, [False] * len(references))


def test_score_mixture_rejects_bad_mixture_and_flags():
    references = _noise(np.random.default_rng(5), 2)
    with pytest.raises(ValueError, match="mixture must have 8600 samples"):
        sep.score_mixture(references, references, np.ones(100), RATE, [False, False])
    with pytest.raises(ValueError, match="mixture must be finite"):
        sep.score_mixture(references, references, np.full(LENGTH, np.nan), RATE, [False, False])
    with pytest.raises(ValueError, match="one flag per source"):
        sep.score_mixture(references, references, references.sum(axis=0), RATE, [False])


def test_bss_eval_names_undefined_sources():
    references = _noise(np.random.default_rng(6), 2)
    estimates = references.copy()
    estimates[1] = 0.0
    with pytest.raises(ValueError, match=r"undefined for sources \[\(1, 'silent_estimate'\)\]"):
        sep.bss_eval(references, estimates)


# ------------------------------------------------------------------------------------------------------------
# Failure policy


def _broken(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """2-source references/estimates whose source 1 has the problem `kind`; source 0 is a fair estimate."""
    rng = np.random.default_rng(7)
    references = _noise(rng, 2)
    estimates = _with_noise(references, 15.0, rng)
    if kind == sep.STATUS_SILENT_REFERENCE:
        references[1] = 0.0
    elif kind == sep.STATUS_SILENT_ESTIMATE:
        estimates[1] = 1e-9  # constant and tiny: silent
    elif kind == sep.STATUS_NONFINITE:
        estimates[1, 100] = np.nan
    return references, estimates


@pytest.mark.parametrize("kind", [sep.STATUS_SILENT_REFERENCE, sep.STATUS_SILENT_ESTIMATE, sep.STATUS_NONFINITE])
def test_problem_source_gets_status_and_nan_bss_for_whole_mixture(kind):
    references, estimates = _broken(kind)
    good, bad = sep.score_mixture(references, estimates, references.sum(axis=0), RATE, [True, True])
    assert (good["status"], bad["status"]) == (sep.STATUS_OK, kind)
    for name in ("sdr", "sir", "sar"):
        assert math.isnan(good[name]) and math.isnan(bad[name])
    assert math.isfinite(good["si_sdr"]) and good["si_sdr"] == pytest.approx(15.0, abs=0.5)
    for name in ("si_sdr", "si_sdri", "pesq"):
        assert math.isnan(bad[name]), name
    assert math.isfinite(bad["si_sdr_mixture"]) == (kind != sep.STATUS_SILENT_REFERENCE)


def test_nonfinite_is_reported_before_silence():
    references, estimates = _broken(sep.STATUS_SILENT_ESTIMATE)
    estimates[1, 0] = np.inf
    rows = sep.score_mixture(references, estimates, references.sum(axis=0), RATE, [False, False])
    assert rows[1]["status"] == sep.STATUS_NONFINITE


def _items(count: int, rng: np.random.Generator, broken: dict[int, str] | None = None) -> list[sep.Item]:
    """`count` 2-source items (speech, background); items named in `broken` get that problem on source 1."""
    speech = _speech_like(1.0)
    items = []
    for k in range(count):
        references = np.stack([speech * (0.5 + 0.1 * k), _noise(rng, 1)[0]])
        estimates = _with_noise(references, 10.0 + k, rng)
        if broken and k in broken:
            references, estimates = _broken(broken[k])
            references[0], estimates[0] = speech, _with_noise(speech, 20.0, rng)
        items.append((f"mix-{count - k:03d}", references.astype(np.float32), estimates.astype(np.float32),
                      references.sum(axis=0).astype(np.float32), (True, False), ("speech", "background")))
    return items


def test_summarise_counts_failures_and_keeps_nan_out_of_means():
    broken = {1: sep.STATUS_SILENT_ESTIMATE, 2: sep.STATUS_NONFINITE, 3: sep.STATUS_SILENT_REFERENCE}
    frame = sep.score_many(_items(5, np.random.default_rng(8), broken), RATE)
    assert list(frame.columns) == list(sep.ROW_COLUMNS)
    assert frame["status"].tolist() == ["ok", "ok", "ok", "silent_estimate", "ok", "nonfinite_estimate",
                                        "ok", "silent_reference", "ok", "ok"]
    summary = sep.summarise(frame, ["source"]).set_index("source")
    assert summary.loc["background", "n_sources"] == 5
    assert summary.loc["background", "n_failed"] == 3
    assert summary.loc["speech", "n_failed"] == 0
    assert summary.loc["speech", "n_pesq_failed"] == 0
    assert summary.loc["background", "n_pesq_failed"] == 0  # not speech: PESQ is not expected
    for source, group in frame.groupby("source"):
        for name in ("sdr", "si_sdr", "si_sdri", "pesq"):
            finite = group[name][np.isfinite(group[name])]
            assert summary.loc[source, f"{name}_count"] == len(finite)
            if len(finite):
                assert summary.loc[source, f"{name}_mean"] == pytest.approx(finite.mean())
                assert summary.loc[source, f"{name}_median"] == pytest.approx(finite.median())
            else:
                assert math.isnan(summary.loc[source, f"{name}_mean"])
    assert summary.loc["background", "sdr_count"] == 2  # 3 mixtures lost BSS-Eval
    assert summary.loc["speech", "sdr_count"] == 2  # ...for both of their sources
    assert math.isnan(summary.loc["background", "pesq_mean"])


def test_summarise_counts_speech_rows_without_pesq():
    frame = pd.DataFrame({"model": ["a", "a", "b"], "speech": [True, True, False],
                          "status": ["ok", "silent_estimate", "ok"], "pesq": [3.0, np.nan, np.nan],
                          "sdr": [10.0, np.nan, np.inf]})
    summary = sep.summarise(frame, ["model"]).set_index("model")
    assert summary.loc["a", "n_pesq_failed"] == 1 and summary.loc["b", "n_pesq_failed"] == 0
    assert summary.loc["a", "pesq_mean"] == 3.0 and summary.loc["a", "sdr_count"] == 1
    assert math.isnan(summary.loc["b", "sdr_mean"]) and summary.loc["b", "sdr_count"] == 0
    with pytest.raises(ValueError, match="columns \\['nope'\\] not in frame"):
        sep.summarise(frame, ["nope"])


# ------------------------------------------------------------------------------------------------------------
# PESQ


def test_pesq_orders_clean_above_noisy_speech():
    rng = np.random.default_rng(9)
    speech = _speech_like()
    clean = sep.pesq_nb(speech, speech, RATE)
    noisy = sep.pesq_nb(speech, _with_noise(speech, 20.0, rng), RATE)
    assert 1.0 <= noisy <= 4.6 and 1.0 <= clean <= 4.6
    assert clean > noisy + 0.5


def test_pesq_of_espeak_speech():
    pytest.importorskip("espeakng_loader")
    soxr = pytest.importorskip("soxr")
    from pipeline.corpora.demo.espeak import EspeakSynthesizer

    synthesizer = EspeakSynthesizer()
    speech = synthesizer.synthesize("zero one two", voice="en", pitch=50, rate=170, amplitude=100)
    speech = soxr.resample(speech, synthesizer.sample_rate, RATE)
    noisy = _with_noise(speech, 25.0, np.random.default_rng(10))
    assert 1.0 <= sep.pesq_nb(speech, noisy, RATE) < sep.pesq_nb(speech, speech, RATE) <= 4.6


@pytest.mark.parametrize(
    "case", ["silent_reference", "silent_estimate", "both_silent", "too_short", "nan_estimate", "no_utterance"]
)
def test_pesq_failures_are_nan_not_exceptions(case):
    speech = _speech_like()
    reference, estimate = speech, speech.copy()
    if case == "silent_reference":
        reference = np.zeros_like(speech)
    elif case == "silent_estimate":
        estimate = np.zeros_like(speech)
    elif case == "both_silent":
        reference = estimate = np.zeros_like(speech)
    elif case == "too_short":
        reference, estimate = speech[:200], speech[:200]
    elif case == "nan_estimate":
        estimate[10] = np.nan
    elif case == "no_utterance":  # not silent, but a 3.9 kHz tone: the library returns NO_UTTERANCES_DETECTED
        reference = estimate = _sine(3900.0, speech.size)
    assert math.isnan(sep.pesq_nb(reference, estimate, RATE))


@pytest.mark.parametrize("behaviour", ["error_code", "exception"])
def test_pesq_library_errors_become_nan(monkeypatch, behaviour):
    import pesq

    def fake(*args, **kwargs):
        if behaviour == "exception":
            raise RuntimeError("boom")
        return float(pesq.PesqError.UNKNOWN)

    monkeypatch.setattr(pesq, "pesq", fake)
    speech = _speech_like(1.0)
    assert math.isnan(sep.pesq_nb(speech, speech, RATE))


def test_pesq_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"estimate must have 100 samples"):
        sep.pesq_nb(np.ones(100), np.ones(50), RATE)


def test_pesq_only_for_speech_sources():
    rng = np.random.default_rng(11)
    references = np.stack([_speech_like(1.0), _noise(rng, 1)[0]])
    estimates = _with_noise(references, 20.0, rng)
    speech_row, background_row = sep.score_mixture(references, estimates, references.sum(axis=0), RATE,
                                                   [True, False])
    assert 1.0 <= speech_row["pesq"] <= 4.6 and 1.0 <= speech_row["pesq_mixture"] <= 4.6
    assert speech_row["pesq"] > speech_row["pesq_mixture"]
    assert math.isnan(background_row["pesq"]) and math.isnan(background_row["pesq_mixture"])


# ------------------------------------------------------------------------------------------------------------
# Many mixtures


def test_score_many_same_frame_inline_or_on_two_processes():
    items = _items(4, np.random.default_rng(12), {2: sep.STATUS_NONFINITE})
    serial = sep.score_many(items, RATE)
    with LocalPool("processes", 2, preload=sep.WORKER_PRELOAD) as pool:
        parallel = sep.score_many(iter(items), RATE, parallel=pool, chunk=1, progress=True)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    expected_ids = [item[0] for item in items for _ in range(2)]  # input order, not sorted (ids count down)
    assert serial["mixture_id"].tolist() == expected_ids
    assert serial["source"].tolist() == ["speech", "background"] * 4
    assert serial["index"].tolist() == [0, 1] * 4


def test_score_many_names_the_bad_mixture():
    items = _items(1, np.random.default_rng(13))
    mixture_id, references, estimates, mixture, speech, names = items[0]
    bad = [(mixture_id, references.T, estimates.T, mixture, speech, names)]
    with pytest.raises(ValueError, match=r"mixture 'mix-001'.*\(samples, sources\)"):
        sep.score_many(bad, RATE)


def test_known_mixture_scores_are_reused_not_recomputed(monkeypatch):
    items = _items(3, np.random.default_rng(14), {1: sep.STATUS_SILENT_REFERENCE})
    first = sep.score_many(items, RATE)
    known = sep.mixture_scores(first)
    assert sorted(known) == sorted(item[0] for item in items) and all(len(v) == 2 for v in known.values())
    calls = []
    real = sep.pesq_nb
    monkeypatch.setattr(sep, "pesq_nb", lambda reference, estimate, rate: calls.append(1) or real(
        reference, estimate, rate))
    again = sep.score_many(items, RATE, known=known)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert len(calls) == 3  # one PESQ per speech source's estimate; none of the mixture's
