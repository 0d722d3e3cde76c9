"""WAV files: 16-bit PCM mono, read and written with the standard library.

Anything else (stereo, 8/24/32-bit, float, compressed, truncated) is refused
with an error naming the file; callers resample rates they do not expect.

The reader parses the RIFF chunks itself so that nothing a header claims is
trusted before it is checked: the sample rate must lie between
:data:`MIN_SAMPLE_RATE_HZ` and :data:`MAX_SAMPLE_RATE_HZ`, and the data size
must fit in the file, before anything is allocated. A ``data`` chunk that
declares 0 bytes (or 0xFFFFFFFF, "unknown") with audio after it is what
writers that cannot seek back leave behind (a recorder writing to a pipe):
the audio up to the end of the file is read, with a warning.
"""
from __future__ import annotations

import os
import struct
import warnings
import wave
from pathlib import Path
from typing import BinaryIO, Tuple, Union

import numpy as np

from pi_runtime.files import write_whole

# Any rate a sound card or recorder plausibly writes; outside, the header is broken.
MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ = 1000, 768000
_PCM, _EXTENSIBLE = 0x0001, 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # what writers that cannot seek back leave in the data header
_MAX_FMT_BYTES = 1024  # a fmt chunk is 16, 18 or 40 bytes


class WavError(ValueError):
    """A WAV file this toolkit cannot read."""


def read_wav(path: Union[str, Path]) -> Tuple[np.ndarray, int]:
    """Read a 16-bit PCM mono WAV file.

    Returns
    -------
    samples : int16 ndarray, shape (num_samples,)
    sample_rate_hz : int

    Raises
    ------
    WavError (a ValueError) naming the file, for anything but 16-bit PCM mono
    at a sample rate from 1000 to 768000 Hz, or a data size larger than the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return _read(handle, path, os.fstat(handle.fileno()).st_size)
    except FileNotFoundError:
        raise WavError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WavError(f"{path}: is a folder, not a WAV file") from None
    except OSError as error:
        raise WavError(f"{path}: cannot read ({error})") from None


def _read(handle: BinaryIO, path: Path, file_bytes: int) -> Tuple[np.ndarray, int]:
    riff = handle.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise WavError(f"{path}: not a PCM WAV file (no RIFF/WAVE header)")
    rate = None
    while True:
        header = handle.read(8)
        if len(header) < 8:
            raise WavError(f"{path}: not a PCM WAV file ({'no fmt chunk' if rate is None else 'no data chunk'})")
        chunk_id, chunk_bytes = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk_id == b"fmt ":
            rate = _read_format(handle, path, chunk_bytes)
        elif chunk_id == b"data":
            if rate is None:
                raise WavError(f"{path}: not a PCM WAV file (data chunk before the fmt chunk)")
            return _read_data(handle, path, chunk_bytes, file_bytes - handle.tell()), rate
        else:  # LIST, fact, ...: skipped without reading (chunks are padded to even sizes)
            handle.seek(chunk_bytes + (chunk_bytes & 1), os.SEEK_CUR)


def _read_format(handle: BinaryIO, path: Path, chunk_bytes: int) -> int:
    if not 16 <= chunk_bytes <= _MAX_FMT_BYTES:
        raise WavError(f"{path}: not a PCM WAV file (fmt chunk of {chunk_bytes} bytes)")
    fmt = handle.read(chunk_bytes + (chunk_bytes & 1))
    if len(fmt) < chunk_bytes:
        raise WavError(f"{path}: truncated in its fmt chunk")
    format_tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if format_tag == _EXTENSIBLE and chunk_bytes >= 40:
        format_tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the tag
    if format_tag != _PCM:
        raise WavError(f"{path}: not a PCM WAV file (format tag {format_tag:#06x}; only 16-bit PCM is supported)")
    if channels != 1:
        raise WavError(f"{path}: {channels} channels; only mono is supported (mix down first)")
    if bits != 16:
        raise WavError(f"{path}: {bits}-bit samples; only 16-bit PCM is supported")
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise WavError(f"{path}: sample rate {rate} Hz in the header; "
                       f"expected {MIN_SAMPLE_RATE_HZ} to {MAX_SAMPLE_RATE_HZ} Hz")
    return rate


def _read_data(handle: BinaryIO, path: Path, declared_bytes: int, remaining_bytes: int) -> np.ndarray:
    if declared_bytes in _UNKNOWN_SIZES and remaining_bytes > 0:
        warnings.warn(f"{path}: the header declares {declared_bytes} data bytes but {remaining_bytes} follow "
                      "(written by a program that could not seek back?); reading them up to the end of the file",
                      stacklevel=3)
        declared_bytes = remaining_bytes - remaining_bytes % 2
    if declared_bytes > remaining_bytes:  # checked before anything is allocated
        raise WavError(f"{path}: truncated: header declares {declared_bytes // 2} samples, "
                       f"file holds {remaining_bytes // 2}")
    declared_bytes -= declared_bytes % 2  # an odd last byte is no sample
    raw = handle.read(declared_bytes)
    if len(raw) != declared_bytes:  # the file shrank while it was read
        raise WavError(f"{path}: truncated: header declares {declared_bytes // 2} samples, file holds {len(raw) // 2}")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def write_wav(path: Union[str, Path], samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write int16 mono samples (1-D) as a 16-bit PCM WAV file, whole or not at all
    (:func:`pi_runtime.files.write_whole`)."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"write_wav needs 1-D int16 samples, got {samples.dtype} with shape {samples.shape}")

    def write(handle) -> None:
        with wave.open(handle, "wb") as writer:  # a handle, not a name: a file that cannot be opened is an OSError
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(int(sample_rate_hz))
            writer.writeframes(samples.astype("<i2").tobytes())

    write_whole(path, write)
