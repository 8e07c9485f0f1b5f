"""Finding the clips a dataset class may draw from, across the prepared clip tables of several corpora."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import ClassSource, DatasetConfig
from pipeline.shards import read_table, shard_paths

INDEX_COLUMNS = ("clip_id", "label", "speaker", "gender")


def load_clip_index(clips_root: Path, corpus: str, split: str) -> pd.DataFrame:
    """Metadata (no audio) of one corpus split, with each clip's location: `shard` path and `row` in it."""
    directory = Path(clips_root) / corpus / split
    if not directory.is_dir():
        raise FileNotFoundError(f"no prepared clips for corpus {corpus!r} at {directory}; run its prepare stage")
    frames = []
    for path in shard_paths(directory):
        frame = read_table([path], INDEX_COLUMNS).to_pandas()
        frame["shard"] = str(path)
        frame["row"] = np.arange(len(frame), dtype=np.int64)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*INDEX_COLUMNS, "shard", "row"])
    return pd.concat(frames, ignore_index=True)


def select(index: pd.DataFrame, source: ClassSource) -> pd.DataFrame:
    """The rows of a corpus index that a class source accepts (labels, speakers, genders filters)."""
    keep = np.ones(len(index), dtype=bool)
    for column, allowed in (("label", source.labels), ("speaker", source.speakers), ("gender", source.genders)):
        if allowed is not None:
            keep &= index[column].isin(allowed).to_numpy()
    return index[keep]


def class_candidates(config: DatasetConfig, clips_root: Path, split: str) -> dict[str, pd.DataFrame]:
    """For each class, the clips of `split` it may use, sorted by clip id (so draws never depend on file order).

    Raises ValueError when a clip would belong to two classes: a mixture could then hold it twice.
    """
    indexes: dict[str, pd.DataFrame] = {}
    candidates = {}
    for name, sources in config.classes.items():
        parts = []
        for source in sources:
            if source.corpus not in indexes:
                indexes[source.corpus] = load_clip_index(clips_root, source.corpus, split)
            parts.append(select(indexes[source.corpus], source))
        frame = pd.concat(parts, ignore_index=True).drop_duplicates("clip_id")
        candidates[name] = frame.sort_values("clip_id", kind="stable").reset_index(drop=True)
    owner: dict[str, str] = {}
    for name, frame in candidates.items():
        for clip_id in frame["clip_id"]:
            if clip_id in owner:
                raise ValueError(f"clip {clip_id} belongs to classes {owner[clip_id]!r} and {name!r}; "
                                 "make the classes' corpus/labels/speakers/genders filters disjoint")
            owner[clip_id] = name
    return candidates
