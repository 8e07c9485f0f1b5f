"""A minimal ctypes binding to libespeak-ng (shipped by the `espeakng-loader` wheel) for offline speech synthesis.

espeak-ng keeps state across utterances that no API call resets: a function-static pitch-flutter phase and a
roughness cycle counter, so the same text spoken twice comes out different depending on what was spoken before.
To make synthesis a pure function of its inputs we run the engine on a private copy of its data directory
(symlinks to the wheel's files) whose voice variants all end with `flutter 0` and `roughness 0`, and bare
voices ("en") get the neutral variant "steady". The remaining randomness (breathiness noise) is reseeded
before every utterance.

One known exception remains: trilled r (the voice "en-gb-scotland") is amplitude-modulated by a cycle counter
that also persists across utterances, so words with an r depend on history in that voice. Avoid trilling voices
where reproducibility matters.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_AUTO = 0
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_EE_OK = 0
_PARAMS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_RAND_SEED = 12345
_STEADY_VARIANT = "steady"
_STEADY_SETTINGS = b"\nflutter 0\nroughness 0\n"

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    """An espeak-ng call failed."""


class _Library:
    """The process-global espeak-ng state: the loaded library, its sample rate and the capture buffer."""

    def __init__(self) -> None:
        import espeakng_loader  # imported lazily: only the demo corpus needs it

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare()
        data_path = str(_private_data_dir(Path(espeakng_loader.get_data_path()))).encode()
        self.sample_rate = int(
            self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _ESPEAK_INITIALIZE_DONT_EXIT)
        )
        if self.sample_rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {self.sample_rate}); data path {data_path!r}")
        self.chunks: list[np.ndarray] = []
        # Keep a reference to the callback for the life of the process, or ctypes frees it under espeak's feet.
        self._callback = _SYNTH_CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self._callback)
        libc_name = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(libc_name) if libc_name else None
        logger.debug("espeak-ng initialised at %d Hz from %s", self.sample_rate, data_path.decode())

    def _declare(self) -> None:
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed.restype = None

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), numsamples: int, _events: int) -> int:
        if numsamples > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0 = continue synthesis

    def reseed(self) -> None:
        """Reset every random source espeak-ng may draw from (breathiness noise), so output is reproducible."""
        if hasattr(self.lib, "espeak_ng_SetRandSeed"):
            self.lib.espeak_ng_SetRandSeed(_RAND_SEED)
        if self._libc is not None:  # older code paths draw from libc's rand()
            self._libc.srand(_RAND_SEED)


def _private_data_dir(source: Path) -> Path:
    """Mirror espeak-ng's data directory into a temporary one whose voice variants have no flutter/roughness."""
    root = Path(tempfile.mkdtemp(prefix="espeak-ng-"))
    atexit.register(_remove_if_owner, root, os.getpid())
    data = root / "espeak-ng-data"
    data.mkdir()
    for entry in source.iterdir():
        if entry.name != "voices":
            os.symlink(entry, data / entry.name)
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for variant in (source / "voices" / "!v").iterdir():
        if variant.is_file():
            (variants / variant.name).write_bytes(variant.read_bytes() + _STEADY_SETTINGS)
    (variants / _STEADY_VARIANT).write_bytes(b"language variant\nname steady\n" + _STEADY_SETTINGS)
    return data


def _remove_if_owner(root: Path, owner_pid: int) -> None:
    # A forked worker inherits the exit hook; only the process that made the directory removes it.
    if os.getpid() == owner_pid:
        shutil.rmtree(root, ignore_errors=True)


def _with_variant(voice: str) -> str:
    return voice if "+" in voice else f"{voice}+{_STEADY_VARIANT}"


_LOCK = threading.Lock()
_LIBRARY: _Library | None = None


def _library() -> _Library:
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _Library()
    return _LIBRARY


def _check(status: int, what: str) -> None:
    if status != _EE_OK:
        raise EspeakError(f"{what} failed with espeak error {status}")


class EspeakSynthesizer:
    """Deterministic text-to-speech with espeak-ng; all instances share the one process-global engine."""

    def __init__(self) -> None:
        with _LOCK:
            self.sample_rate: int = _library().sample_rate

    def synthesize(
        self, text: str, *, voice: str, pitch: int, rate: int, amplitude: int, range_: int = 50
    ) -> np.ndarray:
        """Speak `text` with `voice` (e.g. "en+m3", "en-us+f2"); returns float32 mono in [-1, 1] at `sample_rate`.

        pitch and range_ are 0-100, rate is words per minute (80-450), amplitude is 0-200 (100 = normal).
        """
        if not text.strip():
            raise ValueError("cannot synthesise empty text")
        encoded = text.encode("utf-8") + b"\0"
        with _LOCK:
            lib = _library()
            _check(lib.lib.espeak_SetVoiceByName(_with_variant(voice).encode()), f"espeak_SetVoiceByName({voice!r})")
            for name, value in (("rate", rate), ("volume", amplitude), ("pitch", pitch), ("range", range_)):
                status = lib.lib.espeak_SetParameter(_PARAMS[name], int(value), 0)
                _check(status, f"espeak_SetParameter({name}={value})")
            lib.reseed()
            lib.chunks = []
            try:
                _check(
                    lib.lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_AUTO, None, None),
                    f"espeak_Synth({text!r})",
                )
                _check(lib.lib.espeak_Synchronize(), "espeak_Synchronize")
                samples = np.concatenate(lib.chunks) if lib.chunks else np.zeros(0, np.int16)
            finally:
                lib.chunks = []
        return (samples.astype(np.float32) / 32768.0).astype(np.float32)
