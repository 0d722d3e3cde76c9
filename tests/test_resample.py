"""native.resample: parity with scipy.signal.resample_poly, streaming == one-shot, ratios, bad input.

Tolerance against scipy: |ours - scipy| <= (n + 4) * 2**-24 * S * peak(|x|),
where n = ceil((20 * max(up, down) + 1) / up) is the number of taps one output
sums and S the largest sum of |taps| over the phases (about 1.1 to 1.3). That
is the textbook bound for a float32 sum of n products taken in sequence (each
addition rounds by at most 2**-24 relative), plus the rounding of the taps to
float32 (scipy itself rounds them so for float32 input). It is 3e-6 to 1.4e-5
of the peak for the ratios tested, while a misaligned sample or a wrong tap
gives errors of order 1e-2 and above; observed errors are about 1e-7 of the peak.
"""
import math

import numpy as np
import pytest

from native.resample import MAX_RATE, Resampler, design_filter, ratio_for, resample_poly

signal = pytest.importorskip("scipy.signal")

RATIOS = [(1, 3), (1, 6), (1, 2), (3, 2), (160, 147), (147, 160), (2, 1)]
RATIO_IDS = [f"{up}/{down}" for up, down in RATIOS]


def float32_error_bound(up, down):
    """Relative (to the input's peak) error bound of a float32 polyphase sum: see the module docstring."""
    divisor = math.gcd(up, down)
    up, down = up // divisor, down // divisor
    taps = design_filter(up, down)
    n_terms = -(-taps.size // up) + 4
    largest_abs_sum = max(np.abs(taps[phase::up]).sum() for phase in range(up))
    return n_terms * 2.0**-24 * largest_abs_sum


def assert_matches_scipy(x, up, down):
    reference_input = x.astype(np.float64) / 32768 if x.dtype == np.int16 else x.astype(np.float64)
    expected = signal.resample_poly(reference_input, up, down)
    got = resample_poly(x, up, down)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    peak = float(np.max(np.abs(reference_input), initial=0.0))
    np.testing.assert_allclose(got, expected, rtol=0, atol=float32_error_bound(up, down) * peak)


def noise(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("up,down", RATIOS, ids=RATIO_IDS)
@pytest.mark.parametrize("n", [0, 1, 2, 7, 61, 62, 1000, 48000])
def test_equals_scipy_on_random_signals(up, down, n):
    assert_matches_scipy(noise(n, seed=n), up, down)


@pytest.mark.parametrize("up,down", [(1, 3), (5, 7), (7, 5), (2, 3), (4, 1)])
def test_equals_scipy_on_a_chirp_and_on_unreduced_ratios(up, down):
    t = np.arange(9000) / 48000.0
    chirp = (0.8 * np.sin(2 * np.pi * (100 + 6000 * t) * t)).astype(np.float32)
    assert_matches_scipy(chirp, up, down)
    # Only the ratio matters: scipy reduces by the gcd, so do we.
    np.testing.assert_array_equal(resample_poly(chirp, 6 * up, 6 * down), resample_poly(chirp, up, down))


def test_int16_input_is_scaled_by_1_over_32768():
    pcm = (noise(4800, seed=3) * 8000).astype(np.int16)
    pcm[:2] = [-32768, 32767]
    assert_matches_scipy(pcm, 1, 3)
    np.testing.assert_array_equal(resample_poly(pcm, 1, 3), resample_poly(pcm.astype(np.float32) / 32768, 1, 3))


def test_non_contiguous_input_is_fine():
    x = noise(6000, seed=4)
    np.testing.assert_array_equal(resample_poly(x[::2], 1, 3), resample_poly(x[::2].copy(), 1, 3))


def test_equal_rates_return_a_copy():
    x = noise(100)
    y = resample_poly(x, 4, 4)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(x, y)


def test_filter_design_equals_scipy_firwin():
    for up, down in [(1, 3), (1, 6), (160, 147), (3, 2)]:
        max_rate = max(up, down)
        expected = signal.firwin(20 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
        np.testing.assert_allclose(design_filter(up, down), expected, rtol=0, atol=1e-15)


@pytest.mark.realdata
def test_equals_scipy_on_real_speech_upsampled_to_48k(test_split_clips):
    soundfile = pytest.importorskip("soundfile")
    for path in test_split_clips[:3]:
        pcm, rate_hz = soundfile.read(str(path), dtype="int16")
        assert rate_hz == 16000
        audio_48k = signal.resample_poly(pcm.astype(np.float64) / 32768, 3, 1).astype(np.float32)
        for up, down in [ratio_for(48000, 16000), ratio_for(48000, 8000)]:
            assert_matches_scipy(audio_48k, up, down)
        assert_matches_scipy(pcm, *ratio_for(16000, 8000))


# ---------------------------------------------------------------- streaming --

def stream(resampler, x, chunk_samples):
    parts, lags = [], []
    fed = emitted = 0
    for start in range(0, len(x), chunk_samples):
        part = resampler.process(x[start:start + chunk_samples])
        parts.append(part)
        fed += len(x[start:start + chunk_samples])
        emitted += len(part)
        lags.append(math.ceil(fed * resampler.up / resampler.down) - emitted)
    tail = resampler.flush()
    return parts, tail, lags


@pytest.mark.parametrize("up,down", RATIOS, ids=RATIO_IDS)
@pytest.mark.parametrize("chunk_samples", [1, 17, 101, None], ids=["1", "17", "101", "whole"])
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 3001])
def test_stream_equals_one_shot(up, down, chunk_samples, n):
    """Concatenated process() outputs + flush() == resample_poly, sample for sample (no shift).

    Tolerance 1e-6 of the peak only so that a compiler may fuse multiply-adds
    differently at the two call sites of the same kernel; in practice they are
    bitwise equal (same taps, same samples, same order of summation).
    """
    x = noise(n, seed=n + up)
    resampler = Resampler(up, down)
    parts, tail, lags = stream(resampler, x, chunk_samples or max(n, 1))
    expected = resample_poly(x, up, down)
    got = np.concatenate(parts + [tail])
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * max(1.0, float(np.max(np.abs(x), initial=0))))
    # The stream is only late, by at most delay_samples, never ahead; flush pays what is owed.
    assert all(0 <= lag <= resampler.delay_samples for lag in lags)
    assert len(tail) == (lags[-1] if lags else 0)


def test_stream_equals_one_shot_for_random_ratios_and_uneven_chunks():
    rng = np.random.default_rng(11)
    for _ in range(40):
        up, down = (int(v) for v in rng.integers(1, 50, size=2))
        x = noise(int(rng.integers(0, 2500)), seed=int(rng.integers(1 << 30)))
        assert_matches_scipy(x, up, down)
        resampler, parts, start = Resampler(up, down), [], 0
        while start < len(x):
            size = int(rng.integers(0, 300))  # empty chunks included
            parts.append(resampler.process(x[start:start + size]))
            start += size
        got = np.concatenate(parts + [resampler.flush()])
        np.testing.assert_allclose(got, resample_poly(x, up, down), rtol=0,
                                   atol=1e-6 * max(1.0, float(np.max(np.abs(x), initial=0))))


def test_delay_samples_for_the_device_rates():
    assert Resampler(1, 3).delay_samples == 10   # 48 kHz -> 16 kHz: half_len 30 input samples
    assert Resampler(1, 6).delay_samples == 10
    assert Resampler(1, 2).delay_samples == 10
    assert Resampler(160, 147).delay_samples == math.ceil(1600 / 147)
    assert Resampler(5, 5).delay_samples == 0


def test_the_lag_reaches_delay_samples():
    resampler = Resampler(1, 3)
    x = noise(3000)
    emitted = len(resampler.process(x))
    assert math.ceil(3000 / 3) - emitted == resampler.delay_samples


def test_reset_and_flush_start_a_new_stream():
    resampler = Resampler(1, 3)
    resampler.process(noise(500, seed=1))
    resampler.reset()
    y = noise(900, seed=2)
    got = np.concatenate([resampler.process(y), resampler.flush()])
    np.testing.assert_allclose(got, resample_poly(y, 1, 3), rtol=0, atol=1e-6)
    # flush() left the resampler as new
    got_again = np.concatenate([resampler.process(y), resampler.flush()])
    np.testing.assert_array_equal(got_again, got)


def test_stream_of_int16_chunks_and_identity_ratio():
    pcm = (noise(999, seed=5) * 3000).astype(np.int16)
    resampler = Resampler(1, 2)
    got = np.concatenate([resampler.process(pcm[i:i + 100]) for i in range(0, 999, 100)] + [resampler.flush()])
    np.testing.assert_allclose(got, resample_poly(pcm, 1, 2), rtol=0, atol=1e-6)
    identity = Resampler(3, 3)
    np.testing.assert_array_equal(identity.process(pcm), pcm / np.float32(32768))
    assert identity.flush().shape == (0,)


# ------------------------------------------------------------------- ratios --

def test_ratio_for_the_device_rates():
    assert ratio_for(48000, 16000) == (1, 3)
    assert ratio_for(48000, 8000) == (1, 6)
    assert ratio_for(16000, 8000) == (1, 2)
    assert ratio_for(44100, 16000) == (160, 441)
    assert ratio_for(8000, 48000) == (6, 1)
    assert ratio_for(16000, 16000) == (1, 1)


def test_ratio_for_any_integer_rates():
    rng = np.random.default_rng(7)
    refused = 0
    for from_hz, to_hz in rng.integers(1, 200000, size=(200, 2)):
        divisor = math.gcd(int(from_hz), int(to_hz))
        if max(from_hz, to_hz) // divisor > MAX_RATE:
            with pytest.raises(ValueError, match=f"cannot resample {from_hz} Hz to {to_hz} Hz"):
                ratio_for(int(from_hz), int(to_hz))
            refused += 1
            continue
        up, down = ratio_for(int(from_hz), int(to_hz))
        assert math.gcd(up, down) == 1 and up * from_hz == down * to_hz
    assert 0 < refused < 200


@pytest.mark.parametrize("from_hz", [767999, 47999, 44101])
def test_rates_needing_a_huge_filter_are_refused_before_it_is_built(from_hz):
    # 767999 Hz -> 16 kHz used to design a 15-million-tap filter (1.67 GB at the start of listen)
    with pytest.raises(ValueError, match=rf"cannot resample {from_hz} Hz to 16000 Hz: .* taps"):
        ratio_for(from_hz, 16000)
    up, down = 16000, from_hz
    with pytest.raises(ValueError, match="too fine to resample"):
        Resampler(up, down)


def test_common_rates_stay_accepted():
    for from_hz in (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000):
        for to_hz in (8000, 16000):
            Resampler(*ratio_for(from_hz, to_hz))


@pytest.mark.parametrize("from_hz,to_hz", [(0, 16000), (48000, -1), (48000.0, 16000), (True, 2), ("48000", 16000)])
def test_ratio_for_rejects_bad_rates(from_hz, to_hz):
    with pytest.raises(ValueError):
        ratio_for(from_hz, to_hz)


# ---------------------------------------------------------------- bad input --

@pytest.mark.parametrize(
    "x,match",
    [
        (np.array([0.0, np.nan, 1.0], np.float32), "NaN or infinite"),
        (np.array([0.0, np.inf], np.float32), "NaN or infinite"),
        (np.array([-np.inf], np.float32), "NaN or infinite"),
        (np.array([0.0, 1e18], np.float32), "beyond"),
        (np.array([-1.5e6], np.float32), "beyond"),
        (np.zeros((10, 1), np.float32), "1-D"),
        (np.zeros((2, 10), np.float32), "1-D"),
        (np.float32(1.0), "1-D"),
        (np.zeros(10, np.float64), "int16 or float32"),
        (np.zeros(10, np.int32), "int16 or float32"),
        (["a", "b"], "int16 or float32"),
    ],
)
def test_bad_audio_is_a_clear_value_error(x, match):
    with pytest.raises(ValueError, match=match):
        resample_poly(x, 1, 3)
    with pytest.raises(ValueError, match=match):
        Resampler(1, 3).process(x)


@pytest.mark.parametrize("up,down", [(0, 3), (1, 0), (-1, 3), (1, -3), (1.5, 3), (1, 3.0), (True, 3), (None, 3), (1, 2**16 + 1), (1, 2**40)])
def test_bad_factors_are_a_clear_value_error(up, down):
    with pytest.raises(ValueError):
        resample_poly(noise(10), up, down)
    with pytest.raises(ValueError):
        Resampler(up, down)


def test_a_rejected_chunk_leaves_the_stream_intact():
    x = noise(600, seed=9)
    resampler = Resampler(1, 3)
    first = resampler.process(x[:300])
    with pytest.raises(ValueError):
        resampler.process(np.array([np.nan], np.float32))
    rest = np.concatenate([resampler.process(x[300:]), resampler.flush()])
    np.testing.assert_allclose(np.concatenate([first, rest]), resample_poly(x, 1, 3), rtol=0, atol=1e-6)


def test_tiny_samples_are_read_as_zero():
    """Subnormal input (1e-39) slowed the filter down ~45x on some CPUs: such samples are flushed to zero."""
    tiny = np.full(3000, 1e-39, np.float32)
    tiny[::2] = 3e-20  # below 2**-64 too
    np.testing.assert_array_equal(resample_poly(tiny, 1, 3), np.zeros(1000, np.float32))
    stream = Resampler(160, 441)
    out = np.concatenate([stream.process(tiny[:1234]), stream.process(tiny[1234:]), stream.flush()])
    np.testing.assert_array_equal(out, np.zeros_like(out))
    # a normal signal with tiny samples inside is the signal with zeros there
    x = noise(3000, seed=11)
    x[::7] = 1e-39
    cleaned = np.where(np.abs(x) < 2.0 ** -64, np.float32(0), x)
    np.testing.assert_array_equal(resample_poly(x, 1, 3), resample_poly(cleaned, 1, 3))
