"""GRID: sentences like "bin blue at f two now" from 34 speakers.

Cooke, Barker, Cunningham, Shao, "An audio-visual corpus for speech perception and automatic speech
recognition", JASA 120(5), 2006. Audio per speaker from `{url_template}` (one tar per speaker).
Layout (after extraction, and the demo's): `<root>/<speaker>/**/<utterance>.wav`; utterance ids are GRID's
six-letter codes. Splits are by utterance with a stable hash, so they never change between machines.
"""
from __future__ import annotations

import logging
from dataclasses import field
from pathlib import Path
from typing import Annotated

import numpy as np
from tqdm import tqdm

from pipeline.config import Int, Name, PositiveInt, Section, Sha256, SplitFractions, Str, one_of, rule, section
from pipeline.corpora.archive import extract
from pipeline.corpora.base import CorpusRecipe, PlannedDownload
from pipeline.corpora.demo import synthesis as demo
from pipeline.corpora.demo.espeak import EspeakSynthesizer
from pipeline.corpora.download import download
from pipeline.corpora.recordings import Recording, audio_files, printable_name, stable_split, unreadable_name

log = logging.getLogger(__name__)

GENDERS = ("male", "female")
SAMPLE_RATE = 25_000  # of the real corpus, and of the demo's files
SECONDS = 3.0         # real GRID recordings are 3 s, the sentence framed by silence

# Random streams of the demo writer; fixed values: changing one changes every generated file.
_TAG_SPEAKER, _TAG_UTTERANCE = 4, 5

# GRID sentence grammar: command colour preposition letter digit adverb, one code character per word.
_WORDS: tuple[dict[str, str], ...] = (
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    {c: c for c in "abcdefghijklmnopqrstuvxyz"},  # every letter but w
    {"z": "zero", **{str(d): demo.DIGIT_WORDS[d] for d in range(1, 10)}},
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
)
_POSITIONS = ("command", "colour", "preposition", "letter", "digit", "adverb")
# How the letter is spelt for the synthesiser, so that "a" is said "ay" rather than the article (British "zed").
_LETTER_NAMES = dict(zip(
    "abcdefghijklmnopqrstuvxyz",
    "ay bee see dee ee eff gee aitch eye jay kay el em en oh pee cue are ess tee you vee ex why zed".split(),
))
SENTENCES = int(np.prod([len(table) for table in _WORDS]))  # distinct sentences of the grammar


# --------------------------------------------------------------------------------------------- params schema


@section
class GridDemo(Section):
    utterances: Annotated[PositiveInt, rule(lambda v: v <= SENTENCES, f"at most the grammar's {SENTENCES} sentences")]
    seed: Int


@section
class GridPaper(Section):
    url_template: Annotated[Str, rule(lambda v: "{speaker}" in v, "a URL with a {speaker} placeholder")]
    sha256: dict[Str, Sha256] = field(default_factory=dict)  # speaker id -> its archive's; unverified when absent


@section
class GridConfig(Section):
    """`corpora.grid`: speaker id -> gender, the split fractions, the demo's size, the archives to download."""

    speakers: Annotated[dict[Name, Annotated[Str, one_of(*GENDERS)]], rule(bool, "at least one speaker")]
    split_fractions: SplitFractions
    demo: GridDemo
    paper: GridPaper


# --------------------------------------------------------------------------------------------- profile paper


def planned_downloads(config: GridConfig, downloads_dir: Path) -> list[PlannedDownload]:
    """One archive per configured speaker."""
    return [PlannedDownload(f"grid_{speaker}", config.paper.url_template.format(speaker=speaker),
                            str(Path(downloads_dir) / f"grid_{speaker}.tar"), config.paper.sha256.get(speaker))
            for speaker in sorted(config.speakers)]


def download_grid(config: GridConfig, raw_dir: Path, downloads_dir: Path, lock: Path | None = None) -> dict:
    """Download and extract each configured speaker's audio archive into `raw_dir/<speaker>`; an archive without a
    pinned sha256 is verified against `lock` (see `download`)."""
    for speaker, planned in zip(sorted(config.speakers), planned_downloads(config, downloads_dir)):
        archive = download(planned.url, Path(planned.dest), sha256=planned.sha256, lock=lock)
        extract(archive, raw_dir / speaker)
    return {}


def _scan(config: GridConfig, raw_dir: Path) -> tuple[list[Recording], list[dict[str, str]]]:
    """The configured speakers' utterances (label = speaker id, gender from params, split by utterance hash) and
    the files skipped: a name that is not valid UTF-8 cannot be hashed into a split or named in a report."""
    raw_dir = Path(raw_dir)
    recordings, skipped = [], []
    for speaker in sorted(config.speakers):
        folder = raw_dir / speaker
        files = audio_files(folder) if folder.is_dir() else []
        if not files:
            raise FileNotFoundError(f"GRID speaker folder {folder} holds no audio; expected <root>/{speaker}/*.wav")
        for path in files:
            relative = printable_name(path.relative_to(raw_dir))
            if relative is None:
                skipped.append(unreadable_name(path.relative_to(raw_dir)))
                continue
            recordings.append(Recording(
                path=path, source_file=relative, label=speaker, speaker=speaker,
                gender=config.speakers[speaker], split=stable_split(f"{speaker}/{path.stem}", config.split_fractions)))
    return recordings, skipped


def list_grid(config: GridConfig, raw_dir: Path) -> list[Recording]:
    """The readable recordings of `_scan` (tests and tools that need no skip list)."""
    return _scan(config, raw_dir)[0]


def list_recordings(config: GridConfig, raw_dir: Path) -> tuple[list[Recording], list[dict[str, str]]]:
    """The recipe's listing: every configured speaker's utterances, less the files whose names cannot be read."""
    return _scan(config, raw_dir)


# --------------------------------------------------------------------------------------------- profile demo


def grid_sentence(code: str) -> str:
    """Decode a GRID utterance code such as "bbaf2n" into its words ("bin blue at f two now")."""
    if len(code) != len(_WORDS):
        raise ValueError(f"bad GRID utterance code {code!r}: expected {len(_WORDS)} characters")
    words = []
    for position, (char, table) in enumerate(zip(code, _WORDS)):
        if char not in table:
            raise ValueError(
                f"bad GRID utterance code {code!r}: {char!r} is no {_POSITIONS[position]} "
                f"(one of {''.join(sorted(table))})"
            )
        words.append(table[char])
    return " ".join(words)


def write_demo_grid(root: Path, *, speakers: dict[str, str], utterances: int, seed: int) -> None:
    """Write a synthetic GRID corpus: root/<speaker_id>/<code>.wav, 3 s at 25 kHz 16-bit, `utterances` per speaker.

    `speakers` maps GRID speaker ids ("s1") to "male" or "female"; each gets one fixed voice of that gender.
    """
    root = Path(root)
    synth = EspeakSynthesizer()
    jobs: list[tuple[str, demo.Voice, str, np.random.Generator]] = []
    for speaker_id in sorted(speakers):
        key = demo.stable_key(speaker_id)  # keyed by id, so adding a speaker leaves the others unchanged
        voice = _speaker_voice(demo.seeded_rng(seed, _TAG_SPEAKER, key), speakers[speaker_id])
        codes = _codes(demo.seeded_rng(seed, _TAG_UTTERANCE, key), utterances)
        jobs += [(speaker_id, voice, code, demo.seeded_rng(seed, _TAG_UTTERANCE, key, demo.stable_key(code)))
                 for code in codes]
    total = int(SECONDS * SAMPLE_RATE)
    for speaker_id, voice, code, rng in tqdm(jobs, desc="demo grid", unit="file", leave=False):
        speech = demo.speak(synth, _spoken(code), demo.jitter(voice, rng, pitch=3, rate=8))
        speech = demo.resample(demo.trim_silence(speech, synth.sample_rate), synth.sample_rate, SAMPLE_RATE)
        recording = demo.frame(speech, max(total, len(speech)), SAMPLE_RATE, rng)
        demo.write_wav(root / speaker_id / f"{code}.wav", recording, SAMPLE_RATE)
    log.info("wrote demo GRID to %s: %d speakers x %d utterances", root, len(speakers), utterances)


def write_demo(config: GridConfig, raw_dir: Path) -> None:
    """Generate the offline stand-in: GRID-grammar sentences from one synthetic voice per configured speaker."""
    write_demo_grid(raw_dir, speakers=dict(config.speakers), utterances=config.demo.utterances, seed=config.demo.seed)


def _spoken(code: str) -> str:
    """The text given to the synthesiser: GRID's words with the letter spelt out as its name."""
    words = grid_sentence(code).split()
    words[3] = _LETTER_NAMES[words[3]]
    return " ".join(words)


def _codes(rng: np.random.Generator, count: int) -> list[str]:
    if not 0 <= count <= SENTENCES:
        raise ValueError(f"GRID has {SENTENCES} distinct sentences; asked for {count}")
    tables = [sorted(table) for table in _WORDS]
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        code = "".join(table[int(rng.integers(len(table)))] for table in tables)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


def _speaker_voice(rng: np.random.Generator, gender: str) -> demo.Voice:
    if gender not in GENDERS:
        raise ValueError(f"GRID speaker gender must be 'male' or 'female', got {gender!r}")
    variants = demo.MALE_VARIANTS if gender == "male" else demo.FEMALE_VARIANTS
    return demo.Voice(
        voice=f"{rng.choice(demo.BRITISH_VOICES)}+{rng.choice(variants)}",  # GRID's speakers are British
        pitch=int(rng.integers(35, 66)),
        rate=int(rng.integers(150, 181)),
        amplitude=int(rng.integers(90, 121)),
        range_=int(rng.integers(30, 71)),
    )


RECIPE = CorpusRecipe(name="grid", schema=GridConfig, write_demo=write_demo, planned_downloads=planned_downloads,
                      download=download_grid, list_recordings=list_recordings)
