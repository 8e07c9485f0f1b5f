"""Which channels the model hears, and how its dialogue estimate goes back into the layout.

Films put dialogue in the centre channel: for 5.1 / 7.1 (any layout with FC and more than two channels) the default
plan separates FC alone and leaves every other channel untouched (`--channels` names others, e.g. `FL,FR,FC`, or
`all`; names joined by "+" are heard as their mid: `FC,FL+FR` adds the phantom centre of the front pair).
Stereo: `mid-side` (the default: +7.5 vs +6.5 dB median dialogue SI-SDRi on the demo's 6 stereo scenes,
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
    """`groups`: what the model hears, one model channel per group: a group of one input channel is that channel,
    a group of several is their mid (mean), and its dialogue estimate goes into each of them."""

    names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]

    @property
    def indices(self) -> tuple[int, ...]:
        """Every input channel the plan processes, in order."""
        return tuple(sorted(i for group in self.groups for i in group))

    @property
    def model_channels(self) -> int:
        return len(self.groups)

    @property
    def description(self) -> str:
        parts = [self.names[g[0]] if len(g) == 1 else "mid of " + "+".join(self.names[i] for i in g)
                 for g in self.groups]
        return "+".join(parts) if all(len(g) == 1 for g in self.groups) else ", ".join(parts)

    def select(self, samples: np.ndarray) -> np.ndarray:
        """(n, C) input -> (n, K) what the model hears."""
        if all(len(g) == 1 for g in self.groups):
            return samples[:, [g[0] for g in self.groups]]
        return np.stack([samples[:, g[0]] if len(g) == 1 else samples[:, list(g)].mean(axis=1, dtype=np.float32)
                         for g in self.groups], axis=1)

    def spread(self, dialogue: np.ndarray, channels: int) -> np.ndarray:
        """(n, K) dialogue estimate -> (n, C) dialogue stem (zeros in the channels not processed)."""
        out = np.zeros((len(dialogue), channels), np.float32)
        for k, group in enumerate(self.groups):
            out[:, list(group)] = dialogue[:, k:k + 1]
        return out


def plan_channels(names: Sequence[str], channels: str | None = None, stereo: str = DEFAULT_STEREO) -> ChannelPlan:
    """The plan for a layout's channel `names`; `channels`: None (the default for the layout), "all", or a
    comma-separated list of model channels, each a channel name or names joined by "+" for their mid: "FC",
    "FL,FR,FC", or "FC,FL+FR" (the centre, and the phantom centre between front left and right). ValueError names
    unknown or repeated channels and the layout's."""
    names = tuple(names)
    if stereo not in STEREO_MODES:
        raise ValueError(f"--stereo {stereo!r}; expected one of {', '.join(STEREO_MODES)}")
    if channels is None:
        if "FC" in names and len(names) > 2:
            return ChannelPlan(names, ((names.index("FC"),),))
        if set(names) >= {"FL", "FR"} and len(names) == 2:
            pair = (names.index("FL"), names.index("FR"))
            return ChannelPlan(names, (pair,) if stereo == "mid-side" else ((pair[0],), (pair[1],)))
        return ChannelPlan(names, tuple((i,) for i in range(len(names))))
    if channels.strip().lower() == "all":
        return ChannelPlan(names, tuple((i,) for i in range(len(names))))
    wanted = [[c.strip().upper() for c in group.split("+")] for group in channels.split(",") if group.strip()]
    unknown = [c for group in wanted for c in group if c not in names]
    flat = [c for group in wanted for c in group]
    if unknown or not wanted:
        raise ValueError(f"--channels {channels!r}: {', '.join(unknown) or 'nothing'} not in the input's layout "
                         f"({', '.join(names)}); expected some of those names (joined by '+' for their mid), or "
                         f"'all'")
    if len(set(flat)) != len(flat):
        raise ValueError(f"--channels {channels!r}: a channel appears twice; each may be in one model channel")
    groups = [tuple(sorted(names.index(c) for c in group)) for group in wanted]
    return ChannelPlan(names, tuple(sorted(groups)))
