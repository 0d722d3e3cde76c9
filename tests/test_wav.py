"""pi_runtime.wav: 16-bit PCM mono in, clear errors for everything else."""
import wave

import numpy as np
import pytest

from pi_runtime.wav import WavError, read_wav, write_wav


def _write_raw(path, *, channels=1, width=2, rate=16000, frames=b"\x00\x00" * 10):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)


def test_round_trip(tmp_path):
    samples = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    write_wav(tmp_path / "a.wav", samples, 8000)
    read, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and read.dtype == np.int16
    np.testing.assert_array_equal(read, samples)


def test_empty_file_reads_as_zero_samples(tmp_path):
    write_wav(tmp_path / "e.wav", np.zeros(0, np.int16), 16000)
    samples, _ = read_wav(tmp_path / "e.wav")
    assert samples.shape == (0,)


def test_stereo_8bit_truncated_corrupt_missing(tmp_path):
    _write_raw(tmp_path / "stereo.wav", channels=2, frames=b"\x00" * 40)
    with pytest.raises(WavError, match="stereo.wav: 2 channels"):
        read_wav(tmp_path / "stereo.wav")
    _write_raw(tmp_path / "u8.wav", width=1, frames=b"\x80" * 10)
    with pytest.raises(WavError, match="8-bit"):
        read_wav(tmp_path / "u8.wav")
    write_wav(tmp_path / "t.wav", np.arange(100, dtype=np.int16), 16000)
    data = (tmp_path / "t.wav").read_bytes()
    (tmp_path / "t.wav").write_bytes(data[:-50])
    with pytest.raises(WavError, match="truncated"):
        read_wav(tmp_path / "t.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not a wav file at all")
    with pytest.raises(WavError, match="junk.wav"):
        read_wav(tmp_path / "junk.wav")
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_write_refuses_float(tmp_path):
    with pytest.raises(ValueError, match="int16"):
        write_wav(tmp_path / "f.wav", np.zeros(4, np.float32), 16000)


def test_reads_a_real_clip(test_split_clips):
    samples, rate = read_wav(test_split_clips[0])
    assert rate == 16000 and 0 < samples.size <= 16000
