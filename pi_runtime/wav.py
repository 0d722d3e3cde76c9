"""WAV files: 16-bit PCM mono, read and written with the standard library.

Anything else (stereo, 8/24/32-bit, float, compressed, truncated) is refused
with an error naming the file; callers resample rates they do not expect.
"""
from __future__ import annotations

import wave
from pathlib import Path
from typing import Tuple, Union

import numpy as np


class WavError(ValueError):
    """A WAV file this toolkit cannot read."""


def read_wav(path: Union[str, Path]) -> Tuple[np.ndarray, int]:
    """Read a 16-bit PCM mono WAV file.

    Returns
    -------
    samples : int16 ndarray, shape (num_samples,)
    sample_rate_hz : int
    """
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as reader:
            channels, sample_width = reader.getnchannels(), reader.getsampwidth()
            rate, declared_frames = reader.getframerate(), reader.getnframes()
            if channels != 1:
                raise WavError(f"{path}: {channels} channels; only mono is supported (mix down first)")
            if sample_width != 2:
                raise WavError(f"{path}: {8 * sample_width}-bit samples; only 16-bit PCM is supported")
            raw = reader.readframes(declared_frames)
    except FileNotFoundError:
        raise WavError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as error:
        raise WavError(f"{path}: not a PCM WAV file ({error})") from None
    except OSError as error:
        raise WavError(f"{path}: cannot read ({error})") from None
    if len(raw) != 2 * declared_frames:
        raise WavError(f"{path}: truncated: header declares {declared_frames} samples, "
                       f"file holds {len(raw) // 2}")
    if rate <= 0:
        raise WavError(f"{path}: invalid sample rate {rate}")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16), rate


def write_wav(path: Union[str, Path], samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write int16 mono samples (1-D) as a 16-bit PCM WAV file."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"write_wav needs 1-D int16 samples, got {samples.dtype} with shape {samples.shape}")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(int(sample_rate_hz))
        writer.writeframes(samples.astype("<i2").tobytes())
