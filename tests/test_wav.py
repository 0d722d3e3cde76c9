"""pi_runtime.wav: 16-bit PCM mono in, clear errors for everything else."""
import struct
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


# --- headers that lie (issue 15) ----------------------------------------------------------------------


def _wav_bytes(samples, rate=16000):
    """A canonical 44-byte-header WAV of int16 ``samples``."""
    data = np.asarray(samples, "<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (2 * rate) & 0xFFFFFFFF, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def _with_data_size(wav, size):
    return wav[:40] + struct.pack("<I", size) + wav[44:]


def test_canonical_header_helper_reads_back(tmp_path):
    samples = np.arange(-50, 50, dtype=np.int16)
    (tmp_path / "c.wav").write_bytes(_wav_bytes(samples, 22050))
    read, rate = read_wav(tmp_path / "c.wav")
    assert rate == 22050
    np.testing.assert_array_equal(read, samples)


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_unknown_data_size_with_audio_after_it_is_read_with_a_warning(tmp_path, declared):
    samples = np.arange(1000, dtype=np.int16)
    (tmp_path / "piped.wav").write_bytes(_with_data_size(_wav_bytes(samples), declared))
    with pytest.warns(UserWarning, match=f"piped.wav: the header declares {declared} data bytes but 2000 follow"):
        read, rate = read_wav(tmp_path / "piped.wav")
    assert rate == 16000
    np.testing.assert_array_equal(read, samples)


@pytest.mark.parametrize("rate", [0, 999, 768001, 2 ** 31, 2 ** 32 - 1])
def test_absurd_sample_rates_are_refused(tmp_path, rate):
    (tmp_path / "rate.wav").write_bytes(_wav_bytes(np.zeros(10, np.int16), rate))
    with pytest.raises(WavError, match=f"rate.wav: sample rate {rate} Hz"):
        read_wav(tmp_path / "rate.wav")


def test_a_gigabyte_claim_is_checked_against_the_file_before_allocating(tmp_path):
    import tracemalloc

    (tmp_path / "claim.wav").write_bytes(_with_data_size(_wav_bytes(np.zeros(100, np.int16)), 1 << 30))
    tracemalloc.start()
    try:
        with pytest.raises(WavError, match="claim.wav: truncated: header declares 536870912 samples, file holds 100"):
            read_wav(tmp_path / "claim.wav")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_extra_chunks_and_extensible_pcm_are_read(tmp_path):
    samples = np.arange(7, dtype=np.int16)
    wav = _wav_bytes(samples)
    listed = wav[:36] + b"LIST" + struct.pack("<I", 3) + b"abc\0" + wav[36:]  # odd chunk, padded
    (tmp_path / "list.wav").write_bytes(listed)
    np.testing.assert_array_equal(read_wav(tmp_path / "list.wav")[0], samples)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    extensible = struct.pack("<HHIIHHHHIH", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4, 1) + guid_tail
    data = samples.astype("<i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", 40) + extensible + b"data" + struct.pack("<I", len(data)) + data
    (tmp_path / "ext.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    np.testing.assert_array_equal(read_wav(tmp_path / "ext.wav")[0], samples)
    (tmp_path / "float.wav").write_bytes(_wav_bytes(samples)[:20] + struct.pack("<H", 3) + _wav_bytes(samples)[22:])
    with pytest.raises(WavError, match="float.wav: not a PCM WAV file"):
        read_wav(tmp_path / "float.wav")
