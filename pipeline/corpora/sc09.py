"""SC09: the ten digit words of Speech Commands v0.02.

Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition", arXiv:1804.03209, 2018.
Layout (the archive's, and the demo's): `<root>/<word>/<speaker>_nohash_<take>.wav` (16 kHz), with the
speaker-disjoint splits in `<root>/validation_list.txt` and `<root>/testing_list.txt`; everything else is train.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Sc09Config
from pipeline.corpora.archive import extract
from pipeline.corpora.download import download
from pipeline.corpora.recordings import Recording

log = logging.getLogger(__name__)

URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
VALID_LIST = "validation_list.txt"
TEST_LIST = "testing_list.txt"


def download_sc09(config: Sc09Config, raw_dir: Path, downloads_dir: Path) -> None:
    """Download (resumable, verified) and extract Speech Commands v0.02 into `raw_dir`."""
    archive = download(config.paper.url, downloads_dir / Path(config.paper.url).name, sha256=config.paper.sha256)
    wanted = set(config.digits)
    # Only the digit folders and the split lists: 38k of the archive's 105k files.
    extract(archive, raw_dir, include=lambda name: name.lstrip("./") in (VALID_LIST, TEST_LIST)
            or name.lstrip("./").split("/")[0] in wanted)


def write_demo_sc09_corpus(config: Sc09Config, raw_dir: Path) -> None:
    """Generate the offline stand-in: synthetic voices saying the digits, in the archive's layout."""
    from pipeline.corpora.demo.layouts import write_demo_sc09

    demo = config.demo
    write_demo_sc09(raw_dir, speakers=demo.speakers, takes=demo.takes, valid_fraction=demo.valid_fraction,
                    test_fraction=demo.test_fraction, seed=demo.seed)


def list_sc09(config: Sc09Config, raw_dir: Path) -> list[Recording]:
    """The digit recordings under `raw_dir`, with the archive's splits; label = digit word, speaker from the name."""
    raw_dir = Path(raw_dir)
    valid = _read_list(raw_dir / VALID_LIST)
    test = _read_list(raw_dir / TEST_LIST)
    recordings = []
    for digit in config.digits:
        folder = raw_dir / digit
        if not folder.is_dir():
            raise FileNotFoundError(f"SC09 folder {folder} is missing; expected one folder per digit in {raw_dir}")
        for path in sorted(folder.glob("*.wav")):
            relative = f"{digit}/{path.name}"
            split = "test" if relative in test else "valid" if relative in valid else "train"
            speaker = path.name.split("_nohash_")[0]
            recordings.append(Recording(path=path, source_file=relative, label=digit, speaker=speaker,
                                        gender=None, split=split))
    return recordings


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the Speech Commands layout has it next to the word folders")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}
