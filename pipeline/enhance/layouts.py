"""Which channels the model hears, and how its dialogue estimate goes back into the layout.

Films put dialogue in the centre channel: for 5.1 / 7.1 (any layout with FC and more than two channels) the default
plan separates FC alone and leaves every other channel untouched (`--channels` names others, e.g. `FL,FR,FC`, or
`all`). Stereo: `mid-side` (the default: +7.5 vs +6.5 dB median dialogue SI-SDRi on the demo's 6 stereo scenes,
benchmarks/bench_stereo.py) separates the mid (L + R) / 2 and puts its dialogue estimate into both channels, the
side keeping everything that is not centred; `per-channel` separates L and R on their own. Mono: the one channel.
A plan turns input samples (n, C) into the model's channels (n, K) and a dialogue estimate (n, K) back into a
dialogue stem (n, C) with zeros in the untouched channels, so background = input - dialogue holds everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import av
import numpy as np

STEREO_MODES = ("mid-side", "per-channel")
DEFAULT_STEREO = "mid-side"


def default_layout(channels: int) -> tuple[str, tuple[str, ...]]:
    """FFmpeg's default layout for a channel count (WAV's default channel masks: 6 -> 5.1 = FL FR FC LFE BL BR)
    and its channel names, for files that do not state one."""
    try:
        layout = av.AudioLayout(f"{channels}c")
    except (ValueError, av.FFmpegError):
        return f"{channels}c", tuple(f"C{i + 1}" for i in range(channels))
    names = tuple(c.name for c in layout.channels)
    if len(set(names)) != channels:
        return layout.name, tuple(f"C{i + 1}" for i in range(channels))
    return layout.name, names


@dataclass(frozen=True)
class ChannelPlan:
    """`indices`: the input channels the model hears (per channel), or with `mid_side` the two whose mid it hears."""

    names: tuple[str, ...]
    indices: tuple[int, ...]
    mid_side: bool = False

    @property
    def model_channels(self) -> int:
        return 1 if self.mid_side else len(self.indices)

    @property
    def description(self) -> str:
        chosen = "+".join(self.names[i] for i in self.indices)
        return f"mid of {chosen}" if self.mid_side else chosen

    def select(self, samples: np.ndarray) -> np.ndarray:
        """(n, C) input -> (n, K) what the model hears."""
        if self.mid_side:
            left, right = self.indices
            return (0.5 * (samples[:, left] + samples[:, right]))[:, None]
        return samples[:, list(self.indices)]

    def spread(self, dialogue: np.ndarray, channels: int) -> np.ndarray:
        """(n, K) dialogue estimate -> (n, C) dialogue stem (zeros in the channels not processed)."""
        out = np.zeros((len(dialogue), channels), np.float32)
        if self.mid_side:
            out[:, list(self.indices)] = dialogue[:, :1]
        else:
            out[:, list(self.indices)] = dialogue
        return out


def plan_channels(names: Sequence[str], channels: str | None = None, stereo: str = DEFAULT_STEREO) -> ChannelPlan:
    """The plan for a layout's channel `names`; `channels`: None (the default for the layout), "all", or a
    comma-separated list of names (ValueError naming the unknown ones and the layout's)."""
    names = tuple(names)
    if stereo not in STEREO_MODES:
        raise ValueError(f"--stereo {stereo!r}; expected one of {', '.join(STEREO_MODES)}")
    if channels is None:
        if "FC" in names and len(names) > 2:
            return ChannelPlan(names, (names.index("FC"),))
        if set(names) >= {"FL", "FR"} and len(names) == 2:
            pair = (names.index("FL"), names.index("FR"))
            return ChannelPlan(names, pair, mid_side=stereo == "mid-side")
        return ChannelPlan(names, tuple(range(len(names))))
    if channels.strip().lower() == "all":
        return ChannelPlan(names, tuple(range(len(names))))
    wanted = [c.strip().upper() for c in channels.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in names]
    if unknown or not wanted:
        raise ValueError(f"--channels {channels!r}: {', '.join(unknown) or 'nothing'} not in the input's layout "
                         f"({', '.join(names)}); expected some of those names, or 'all'")
    return ChannelPlan(names, tuple(sorted({names.index(c) for c in wanted})))
