"""Writers of the demo corpus in the on-disk layouts of the real corpora (SC09, GRID, movie sound effects).

Every writer is byte-for-byte deterministic in its arguments: randomness comes only from generators seeded with
`[seed, <tag>, <stable index>]`, speech from the deterministic espeak-ng binding, sounds from `backgrounds`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import zlib
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from scipy import signal
from tqdm import tqdm

from pipeline.corpora.demo.backgrounds import BACKGROUND_KINDS
from pipeline.corpora.demo.espeak import EspeakSynthesizer

logger = logging.getLogger(__name__)

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

SC09_SAMPLE_RATE = 16_000
SC09_CLIP_SECONDS = 1.0
GRID_SAMPLE_RATE = 25_000
GRID_SECONDS = 3.0  # real GRID recordings are 3 s, the sentence framed by silence

MANIFEST_COLUMNS = ("file", "url", "sha256", "licence", "title", "label", "contains_speech")

# Tags that keep the random streams of different purposes apart for the same seed.
_TAG_SC09_SPEAKER, _TAG_SC09_TAKE, _TAG_SC09_SPLIT, _TAG_GRID_SPEAKER, _TAG_GRID_UTTERANCE, _TAG_SFX = range(1, 7)

# en-gb-scotland is left out on purpose: its trilled r depends on what espeak-ng spoke before (see espeak.py).
_ENGLISH_VOICES = ("en", "en-us", "en-gb-x-rp", "en-us-nyc", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
_BRITISH_VOICES = ("en", "en-gb-x-rp")  # GRID's speakers are British
_MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")

# GRID sentence grammar: command colour preposition letter digit adverb, one code character per word.
_GRID_WORDS: tuple[dict[str, str], ...] = (
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    {c: c for c in "abcdefghijklmnopqrstuvxyz"},  # every letter but w
    {"z": "zero", **{str(d): DIGITS[d] for d in range(1, 10)}},
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
)
_GRID_POSITIONS = ("command", "colour", "preposition", "letter", "digit", "adverb")
# How the letter is spelt for the synthesiser, so that "a" is said "ay" rather than the article (British "zed").
_LETTER_NAMES = dict(zip(
    "abcdefghijklmnopqrstuvxyz",
    "ay bee see dee ee eff gee aitch eye jay kay el em en oh pee cue are ess tee you vee ex why zed".split(),
))


@dataclass(frozen=True)
class _Voice:
    voice: str
    pitch: int
    rate: int
    amplitude: int
    range_: int


# --------------------------------------------------------------------------------------------- shared helpers


def _rng(seed: int, tag: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag, *keys])


def _stable_key(text: str) -> int:
    """A process-independent integer for a string (Python's hash() is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def _resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return x.astype(np.float32)
    try:
        import soxr
    except ImportError:
        g = gcd(source_rate, target_rate)
        return signal.resample_poly(x, target_rate // g, source_rate // g).astype(np.float32)
    return soxr.resample(x.astype(np.float32), source_rate, target_rate, quality="HQ").astype(np.float32)


def _trim_silence(x: np.ndarray, sr: int, threshold: float = 0.01, margin_s: float = 0.01) -> np.ndarray:
    """Cut leading/trailing samples quieter than `threshold` x peak, keeping a `margin_s` margin."""
    loud = np.flatnonzero(np.abs(x) > threshold * float(np.max(np.abs(x), initial=0.0)))
    if loud.size == 0:
        raise RuntimeError("speech synthesis produced silence")
    margin = int(margin_s * sr)
    return x[max(0, loud[0] - margin): loud[-1] + margin + 1]


def _fade_out(x: np.ndarray, sr: int, seconds: float = 0.01) -> np.ndarray:
    n = min(len(x), int(seconds * sr))
    x = x.copy()
    x[len(x) - n:] *= np.linspace(1.0, 0.0, n, dtype=x.dtype)
    return x


def _frame(x: np.ndarray, total: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Place `x` at a random offset in `total` samples of silence (cutting it, with a fade-out, if too long)."""
    if len(x) >= total:
        return _fade_out(x[:total], sr)
    out = np.zeros(total, dtype=np.float32)
    start = int(rng.integers(0, total - len(x) + 1))
    out[start:start + len(x)] = x
    return out


def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write 16-bit PCM WAV via a temporary name and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    sf.write(temporary, np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    os.replace(temporary, path)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(text.encode("utf-8"))
    os.replace(temporary, path)


def _speak(synth: EspeakSynthesizer, text: str, voice: _Voice) -> np.ndarray:
    return synth.synthesize(
        text, voice=voice.voice, pitch=voice.pitch, rate=voice.rate, amplitude=voice.amplitude, range_=voice.range_
    )


def _jitter(voice: _Voice, rng: np.random.Generator, pitch: int, rate: int) -> _Voice:
    """The same speaker on another take: pitch and rate moved a little."""
    return _Voice(
        voice=voice.voice,
        pitch=int(np.clip(voice.pitch + rng.integers(-pitch, pitch + 1), 0, 100)),
        rate=int(np.clip(voice.rate + rng.integers(-rate, rate + 1), 80, 450)),
        amplitude=voice.amplitude,
        range_=voice.range_,
    )


# --------------------------------------------------------------------------------------------- SC09


def _sc09_speaker(rng: np.random.Generator) -> _Voice:
    variants = _MALE_VARIANTS if rng.random() < 0.5 else _FEMALE_VARIANTS
    return _Voice(
        voice=f"{rng.choice(_ENGLISH_VOICES)}+{rng.choice(variants)}",
        pitch=int(rng.integers(25, 76)),
        rate=int(rng.integers(130, 201)),
        amplitude=int(rng.integers(70, 141)),
        range_=int(rng.integers(20, 81)),
    )


def _sc09_speaker_ids(speakers: int, seed: int) -> list[str]:
    """Eight hex characters per speaker, like Speech Commands' hashed speaker ids."""
    ids: list[str] = []
    for index in range(speakers):
        rng = _rng(seed, _TAG_SC09_SPEAKER, index, 0)
        speaker_id = f"{int(rng.integers(0, 2**32)):08x}"
        while speaker_id in ids:  # a collision: draw again from the same stream, still deterministic
            speaker_id = f"{int(rng.integers(0, 2**32)):08x}"
        ids.append(speaker_id)
    return ids


def _split_counts(speakers: int, valid_fraction: float, test_fraction: float) -> tuple[int, int]:
    if not (0.0 <= valid_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise ValueError(f"split fractions must lie in [0, 1): valid={valid_fraction}, test={test_fraction}")
    n_valid = max(int(valid_fraction > 0), int(round(valid_fraction * speakers)))
    n_test = max(int(test_fraction > 0), int(round(test_fraction * speakers)))
    if speakers - n_valid - n_test < 1:
        raise ValueError(
            f"{speakers} speakers leave none for training with valid={valid_fraction}, test={test_fraction}"
        )
    return n_valid, n_test


def _sc09_clip(synth: EspeakSynthesizer, digit: str, voice: _Voice, rng: np.random.Generator) -> np.ndarray:
    speech = _trim_silence(_speak(synth, digit, voice), synth.sample_rate)
    speech = _resample(speech, synth.sample_rate, SC09_SAMPLE_RATE)
    # Real Speech Commands clips are (almost all) exactly 1 s with the word somewhere inside.
    return _frame(speech, int(SC09_CLIP_SECONDS * SC09_SAMPLE_RATE), SC09_SAMPLE_RATE, rng)


def write_demo_sc09(
    root: Path, *, speakers: int, takes: int, valid_fraction: float, test_fraction: float, seed: int
) -> None:
    """Write a synthetic SC09 (Speech Commands v0.02 digits) corpus: root/<digit>/<speaker>_nohash_<take>.wav.

    Clips are 1 s of 16 kHz 16-bit PCM. validation_list.txt and testing_list.txt list relative paths, split by
    speaker like the real corpus.
    """
    if speakers < 1 or takes < 1:
        raise ValueError(f"need at least one speaker and one take, got speakers={speakers}, takes={takes}")
    root = Path(root)
    n_valid, n_test = _split_counts(speakers, valid_fraction, test_fraction)
    ids = _sc09_speaker_ids(speakers, seed)
    order = _rng(seed, _TAG_SC09_SPLIT).permutation(speakers)
    split_of = {ids[i]: "test" for i in order[:n_test]} | {ids[i]: "valid" for i in order[n_test:n_test + n_valid]}
    synth = EspeakSynthesizer()
    listed: dict[str, list[str]] = {"valid": [], "test": []}
    jobs = [(s, d, t) for s in range(speakers) for d in range(len(DIGITS)) for t in range(takes)]
    voices = [_sc09_speaker(_rng(seed, _TAG_SC09_SPEAKER, s, 1)) for s in range(speakers)]
    for s, d, take in tqdm(jobs, desc="demo sc09", unit="file", leave=False):
        rng = _rng(seed, _TAG_SC09_TAKE, s, d, take)
        clip = _sc09_clip(synth, DIGITS[d], _jitter(voices[s], rng, pitch=5, rate=12), rng)
        relative = f"{DIGITS[d]}/{ids[s]}_nohash_{take}.wav"
        _write_wav(root / relative, clip, SC09_SAMPLE_RATE)
        if ids[s] in split_of:
            listed[split_of[ids[s]]].append(relative)
    _write_text(root / "validation_list.txt", "".join(f"{p}\n" for p in sorted(listed["valid"])))
    _write_text(root / "testing_list.txt", "".join(f"{p}\n" for p in sorted(listed["test"])))
    logger.info(
        "wrote demo SC09 to %s: %d speakers (%d valid, %d test) x %d takes x %d digits",
        root, speakers, n_valid, n_test, takes, len(DIGITS),
    )


# --------------------------------------------------------------------------------------------- GRID


def grid_sentence(code: str) -> str:
    """Decode a GRID utterance code such as "bbaf2n" into its words ("bin blue at f two now")."""
    if len(code) != len(_GRID_WORDS):
        raise ValueError(f"bad GRID utterance code {code!r}: expected {len(_GRID_WORDS)} characters")
    words = []
    for position, (char, table) in enumerate(zip(code, _GRID_WORDS)):
        if char not in table:
            raise ValueError(
                f"bad GRID utterance code {code!r}: {char!r} is no {_GRID_POSITIONS[position]} "
                f"(one of {''.join(sorted(table))})"
            )
        words.append(table[char])
    return " ".join(words)


def _grid_spoken(code: str) -> str:
    """The text given to the synthesiser: GRID's words with the letter spelt out as its name."""
    words = grid_sentence(code).split()
    words[3] = _LETTER_NAMES[words[3]]
    return " ".join(words)


def _grid_codes(rng: np.random.Generator, count: int) -> list[str]:
    possible = int(np.prod([len(table) for table in _GRID_WORDS]))
    if not 0 <= count <= possible:
        raise ValueError(f"GRID has {possible} distinct sentences; asked for {count}")
    tables = [sorted(table) for table in _GRID_WORDS]
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        code = "".join(table[int(rng.integers(len(table)))] for table in tables)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


def _grid_speaker(rng: np.random.Generator, gender: str) -> _Voice:
    if gender not in ("male", "female"):
        raise ValueError(f"GRID speaker gender must be 'male' or 'female', got {gender!r}")
    variants = _MALE_VARIANTS if gender == "male" else _FEMALE_VARIANTS
    return _Voice(
        voice=f"{rng.choice(_BRITISH_VOICES)}+{rng.choice(variants)}",
        pitch=int(rng.integers(35, 66)),
        rate=int(rng.integers(150, 181)),
        amplitude=int(rng.integers(90, 121)),
        range_=int(rng.integers(30, 71)),
    )


def write_demo_grid(root: Path, *, speakers: dict[str, str], utterances: int, seed: int) -> None:
    """Write a synthetic GRID corpus: root/<speaker_id>/<code>.wav, 3 s at 25 kHz 16-bit, `utterances` per speaker.

    `speakers` maps GRID speaker ids ("s1") to "male" or "female"; each gets one fixed voice of that gender.
    """
    root = Path(root)
    synth = EspeakSynthesizer()
    jobs: list[tuple[str, _Voice, str, np.random.Generator]] = []
    for speaker_id in sorted(speakers):
        key = _stable_key(speaker_id)  # keyed by id, so adding a speaker leaves the others unchanged
        voice = _grid_speaker(_rng(seed, _TAG_GRID_SPEAKER, key), speakers[speaker_id])
        codes = _grid_codes(_rng(seed, _TAG_GRID_UTTERANCE, key), utterances)
        jobs += [(speaker_id, voice, code, _rng(seed, _TAG_GRID_UTTERANCE, key, _stable_key(code))) for code in codes]
    total = int(GRID_SECONDS * GRID_SAMPLE_RATE)
    for speaker_id, voice, code, rng in tqdm(jobs, desc="demo grid", unit="file", leave=False):
        speech = _speak(synth, _grid_spoken(code), _jitter(voice, rng, pitch=3, rate=8))
        speech = _resample(_trim_silence(speech, synth.sample_rate), synth.sample_rate, GRID_SAMPLE_RATE)
        recording = _frame(speech, max(total, len(speech)), GRID_SAMPLE_RATE, rng)
        _write_wav(root / speaker_id / f"{code}.wav", recording, GRID_SAMPLE_RATE)
    logger.info("wrote demo GRID to %s: %d speakers x %d utterances", root, len(speakers), utterances)


# --------------------------------------------------------------------------------------------- movie sound effects


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: row["file"]))
    return buffer.getvalue()


def write_demo_movie_sfx(
    root: Path, *, kinds: Sequence[str], per_kind: int, seconds: float, sample_rate: int, seed: int
) -> None:
    """Write procedural sound effects: root/files/<kind>_<nnn>.wav plus root/manifest.csv.

    The manifest has the columns of MANIFEST_COLUMNS; `file` is the plain file name ("rain_000.wav"), as in a
    manifest of downloads, and the file itself lies in root/files/.
    """
    unknown = sorted(set(kinds) - set(BACKGROUND_KINDS))
    if unknown:
        raise ValueError(f"unknown background kinds {unknown}; available: {sorted(BACKGROUND_KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"background kinds repeat: {list(kinds)}")
    root = Path(root)
    jobs = [(kind, index) for kind in kinds for index in range(per_kind)]
    rows: list[dict[str, str]] = []
    for kind, index in tqdm(jobs, desc="demo movie_sfx", unit="file", leave=False):
        rng = _rng(seed, _TAG_SFX, _stable_key(kind), index)
        name = f"{kind}_{index:03d}.wav"
        _write_wav(root / "files" / name, BACKGROUND_KINDS[kind](rng, seconds, sample_rate), sample_rate)
        rows.append({
            "file": name,
            "url": "",
            "sha256": _sha256(root / "files" / name),
            "licence": "CC0 (generated)",
            "title": f"{kind.replace('_', ' ').capitalize()} {index + 1} (procedural)",
            "label": kind,
            "contains_speech": "false",
        })
    _write_text(root / "manifest.csv", _manifest_text(rows))
    logger.info("wrote demo movie_sfx to %s: %d kinds x %d files x %.1f s", root, len(kinds), per_kind, seconds)
