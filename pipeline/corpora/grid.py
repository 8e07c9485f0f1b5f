"""GRID: sentences like "bin blue at f two now" from 34 speakers.

Cooke, Barker, Cunningham, Shao, "An audio-visual corpus for speech perception and automatic speech
recognition", JASA 120(5), 2006. Audio per speaker from `{url_template}` (one tar per speaker).
Layout (after extraction, and the demo's): `<root>/<speaker>/**/<utterance>.wav`; utterance ids are GRID's
six-letter codes. Splits are by utterance with a stable hash, so they never change between machines.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import GridConfig
from pipeline.corpora.archive import extract
from pipeline.corpora.download import download
from pipeline.corpora.recordings import Recording, audio_files, stable_split

log = logging.getLogger(__name__)

URL_TEMPLATE = "https://spandh.dcs.shef.ac.uk/gridcorpus/{speaker}/audio/{speaker}.tar"


def download_grid(config: GridConfig, raw_dir: Path, downloads_dir: Path) -> None:
    """Download and extract each configured speaker's audio archive into `raw_dir/<speaker>`."""
    for speaker in sorted(config.speakers):
        url = config.paper.url_template.format(speaker=speaker)
        archive = download(url, downloads_dir / f"grid_{speaker}.tar", sha256=config.paper.sha256.get(speaker))
        extract(archive, raw_dir / speaker)


def write_demo_grid_corpus(config: GridConfig, raw_dir: Path) -> None:
    """Generate the offline stand-in: GRID-grammar sentences from one synthetic voice per configured speaker."""
    from pipeline.corpora.demo.layouts import write_demo_grid

    write_demo_grid(raw_dir, speakers=dict(config.speakers), utterances=config.demo.utterances, seed=config.demo.seed)


def list_grid(config: GridConfig, raw_dir: Path) -> list[Recording]:
    """The configured speakers' utterances; label = speaker id, gender from params, split by utterance hash."""
    raw_dir = Path(raw_dir)
    recordings = []
    for speaker in sorted(config.speakers):
        folder = raw_dir / speaker
        files = audio_files(folder) if folder.is_dir() else []
        if not files:
            raise FileNotFoundError(f"GRID speaker folder {folder} holds no audio; expected <root>/{speaker}/*.wav")
        for path in files:
            relative = path.relative_to(raw_dir).as_posix()
            recordings.append(Recording(
                path=path, source_file=relative, label=speaker, speaker=speaker,
                gender=config.speakers[speaker], split=stable_split(f"{speaker}/{path.stem}", config.split_fractions)))
    return recordings
