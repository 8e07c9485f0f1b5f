"""SC09: the ten digit words of Speech Commands v0.02.

Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition", arXiv:1804.03209, 2018.
Layout (the archive's, and the demo's): `<root>/<word>/<speaker>_nohash_<take>.wav` (16 kHz), with the
speaker-disjoint splits in `<root>/validation_list.txt` and `<root>/testing_list.txt`; everything else is train.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import model_validator
from tqdm import tqdm

from pipeline.config import Float, Int, PositiveInt, Section, Sha256, Str, require, rule, section
from pipeline.corpora.archive import extract
from pipeline.corpora.base import CorpusRecipe, PlannedDownload
from pipeline.corpora.demo import synthesis as demo
from pipeline.corpora.demo.espeak import EspeakSynthesizer
from pipeline.corpora.download import download
from pipeline.corpora.recordings import Recording, printable_name, unreadable_name

log = logging.getLogger(__name__)

VALID_LIST = "validation_list.txt"
TEST_LIST = "testing_list.txt"
DIGITS = demo.DIGIT_WORDS
SAMPLE_RATE = 16_000  # of the real corpus, and of the demo's files
CLIP_SECONDS = 1.0

# Random streams of the demo writer; fixed values: changing one changes every generated file.
_TAG_SPEAKER, _TAG_TAKE, _TAG_SPLIT = 1, 2, 3

SplitFraction = Annotated[Float, rule(lambda v: 0 <= v < 1, "a fraction in [0, 1)")]


# --------------------------------------------------------------------------------------------- params schema


@section
class Sc09Demo(Section):
    speakers: PositiveInt
    takes: PositiveInt
    valid_fraction: SplitFraction
    test_fraction: SplitFraction
    seed: Int

    @model_validator(mode="after")
    def _leaves_training_speakers(self) -> Sc09Demo:
        n_valid, n_test = _split_counts(self.speakers, self.valid_fraction, self.test_fraction)
        require(self.speakers - n_valid - n_test >= 1,
                f"more speakers than the {n_valid} valid + {n_test} test ones (none is left for training)",
                key=("speakers",), value=self.speakers)
        return self


@section
class Sc09Paper(Section):
    url: Annotated[Str, rule(lambda v: v.startswith(("http://", "https://")), "an http(s) URL")]
    sha256: Sha256 | None = None


@section
class Sc09Config(Section):
    """`corpora.sc09`: the digit words to keep, the demo's speakers and splits, the archive to download."""

    digits: Annotated[tuple[Str, ...], rule(lambda v: len(v) > 0 and len(set(v)) == len(v),
                                            "a non-empty list of distinct words")]
    demo: Sc09Demo
    paper: Sc09Paper


# --------------------------------------------------------------------------------------------- profile paper


def planned_downloads(config: Sc09Config, downloads_dir: Path) -> list[PlannedDownload]:
    """The one archive of Speech Commands v0.02."""
    url = config.paper.url
    return [PlannedDownload("sc09", url, str(Path(downloads_dir) / Path(url).name), config.paper.sha256)]


def download_sc09(config: Sc09Config, raw_dir: Path, downloads_dir: Path, lock: Path | None = None) -> dict:
    """Download (resumable, verified; see `download` for `lock`) and extract Speech Commands v0.02 into `raw_dir`."""
    (planned,) = planned_downloads(config, downloads_dir)
    archive = download(planned.url, Path(planned.dest), sha256=planned.sha256, lock=lock)
    wanted = set(config.digits)
    # Only the digit folders and the split lists: 38k of the archive's 105k files.
    extract(archive, raw_dir, include=lambda name: name.lstrip("./") in (VALID_LIST, TEST_LIST)
            or name.lstrip("./").split("/")[0] in wanted)
    return {}


def _scan(config: Sc09Config, raw_dir: Path) -> tuple[list[Recording], list[dict[str, str]]]:
    """The digit recordings under `raw_dir`, with the archive's splits (label = digit word, speaker from the name),
    and the files skipped because their names are not valid UTF-8 (the split lists cannot name them)."""
    raw_dir = Path(raw_dir)
    skipped = []
    valid = _read_list(raw_dir / VALID_LIST)
    test = _read_list(raw_dir / TEST_LIST)
    recordings = []
    for digit in config.digits:
        folder = raw_dir / digit
        if not folder.is_dir():
            raise FileNotFoundError(f"SC09 folder {folder} is missing; expected one folder per digit in {raw_dir}")
        for path in sorted(folder.glob("*.wav")):
            relative = printable_name(f"{digit}/{path.name}")
            if relative is None:
                skipped.append(unreadable_name(path.relative_to(raw_dir)))
                continue
            split = "test" if relative in test else "valid" if relative in valid else "train"
            speaker = path.name.split("_nohash_")[0]
            recordings.append(Recording(path=path, source_file=relative, label=digit, speaker=speaker,
                                        gender=None, split=split))
    return recordings, skipped


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the Speech Commands layout has it next to the word folders")
    return {line.strip() for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines() if line.strip()}


# --------------------------------------------------------------------------------------------- profile demo


def write_demo_sc09(
    root: Path, *, speakers: int, takes: int, valid_fraction: float, test_fraction: float, seed: int
) -> None:
    """Write a synthetic SC09 (Speech Commands v0.02 digits) corpus: root/<digit>/<speaker>_nohash_<take>.wav.

    Clips are 1 s of 16 kHz 16-bit PCM, all ten digits. validation_list.txt and testing_list.txt list relative
    paths, split by speaker like the real corpus.
    """
    if speakers < 1 or takes < 1:
        raise ValueError(f"need at least one speaker and one take, got speakers={speakers}, takes={takes}")
    root = Path(root)
    n_valid, n_test = _split_counts(speakers, valid_fraction, test_fraction)
    if speakers - n_valid - n_test < 1:
        raise ValueError(
            f"{speakers} speakers leave none for training with valid={valid_fraction}, test={test_fraction}"
        )
    ids = _speaker_ids(speakers, seed)
    order = demo.seeded_rng(seed, _TAG_SPLIT).permutation(speakers)
    split_of = {ids[i]: "test" for i in order[:n_test]} | {ids[i]: "valid" for i in order[n_test:n_test + n_valid]}
    synth = EspeakSynthesizer()
    listed: dict[str, list[str]] = {"valid": [], "test": []}
    jobs = [(s, d, t) for s in range(speakers) for d in range(len(DIGITS)) for t in range(takes)]
    voices = [_speaker_voice(demo.seeded_rng(seed, _TAG_SPEAKER, s, 1)) for s in range(speakers)]
    for s, d, take in tqdm(jobs, desc="demo sc09", unit="file", leave=False):
        rng = demo.seeded_rng(seed, _TAG_TAKE, s, d, take)
        clip = _clip(synth, DIGITS[d], demo.jitter(voices[s], rng, pitch=5, rate=12), rng)
        relative = f"{DIGITS[d]}/{ids[s]}_nohash_{take}.wav"
        demo.write_wav(root / relative, clip, SAMPLE_RATE)
        if ids[s] in split_of:
            listed[split_of[ids[s]]].append(relative)
    demo.write_text(root / VALID_LIST, "".join(f"{p}\n" for p in sorted(listed["valid"])))
    demo.write_text(root / TEST_LIST, "".join(f"{p}\n" for p in sorted(listed["test"])))
    log.info("wrote demo SC09 to %s: %d speakers (%d valid, %d test) x %d takes x %d digits",
             root, speakers, n_valid, n_test, takes, len(DIGITS))


def write_demo(config: Sc09Config, raw_dir: Path) -> None:
    """Generate the offline stand-in from `corpora.sc09.demo`: synthetic voices saying the digits."""
    d = config.demo
    write_demo_sc09(raw_dir, speakers=d.speakers, takes=d.takes, valid_fraction=d.valid_fraction,
                    test_fraction=d.test_fraction, seed=d.seed)


def _speaker_voice(rng: np.random.Generator) -> demo.Voice:
    variants = demo.MALE_VARIANTS if rng.random() < 0.5 else demo.FEMALE_VARIANTS
    return demo.Voice(
        voice=f"{rng.choice(demo.ENGLISH_VOICES)}+{rng.choice(variants)}",
        pitch=int(rng.integers(25, 76)),
        rate=int(rng.integers(130, 201)),
        amplitude=int(rng.integers(70, 141)),
        range_=int(rng.integers(20, 81)),
    )


def _speaker_ids(speakers: int, seed: int) -> list[str]:
    """Eight hex characters per speaker, like Speech Commands' hashed speaker ids."""
    ids: list[str] = []
    for index in range(speakers):
        rng = demo.seeded_rng(seed, _TAG_SPEAKER, index, 0)
        speaker_id = f"{int(rng.integers(0, 2**32)):08x}"
        while speaker_id in ids:  # a collision: draw again from the same stream, still deterministic
            speaker_id = f"{int(rng.integers(0, 2**32)):08x}"
        ids.append(speaker_id)
    return ids


def _split_counts(speakers: int, valid_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Speakers in valid and in test: at least one each when its fraction is above 0."""
    if not (0.0 <= valid_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise ValueError(f"split fractions must lie in [0, 1): valid={valid_fraction}, test={test_fraction}")
    n_valid = max(int(valid_fraction > 0), int(round(valid_fraction * speakers)))
    n_test = max(int(test_fraction > 0), int(round(test_fraction * speakers)))
    return n_valid, n_test


def _clip(synth: EspeakSynthesizer, digit: str, voice: demo.Voice, rng: np.random.Generator) -> np.ndarray:
    speech = demo.trim_silence(demo.speak(synth, digit, voice), synth.sample_rate)
    speech = demo.resample(speech, synth.sample_rate, SAMPLE_RATE)
    # Real Speech Commands clips are (almost all) exactly 1 s with the word somewhere inside.
    return demo.frame(speech, int(CLIP_SECONDS * SAMPLE_RATE), SAMPLE_RATE, rng)


def list_sc09(config: Sc09Config, raw_dir: Path) -> list[Recording]:
    """The readable recordings of `_scan` (tests and tools that need no skip list)."""
    return _scan(config, raw_dir)[0]


def list_recordings(config: Sc09Config, raw_dir: Path) -> tuple[list[Recording], list[dict[str, str]]]:
    """The recipe's listing: every digit recording, less the files whose names cannot be read."""
    return _scan(config, raw_dir)


RECIPE = CorpusRecipe(name="sc09", schema=Sc09Config, write_demo=write_demo, planned_downloads=planned_downloads,
                      download=download_sc09, list_recordings=list_recordings)
