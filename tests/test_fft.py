"""The native mixed-radix real FFT against numpy.fft.rfft (no TensorFlow needed).

The one test module that imports a ``native._*`` extension directly: the C FFT
is an internal of the frontend with no Python face of its own (the frontend
tests check it through the features), and these tests reach it through the
extension's two test hooks, ``rfft_lanes`` and ``fft_plan_shape``.
"""
import numpy as np
import pytest

from native import _frontend

# Radix 2/3/4/5 products, the frontend's lengths, primes (the generic radix-7
# butterfly, the chirp-z transform above 7, also as the odd-length path) and
# lengths with a large prime factor.
LENGTHS = (list(range(1, 65)) + [96, 97, 100, 101, 127, 128, 240, 254, 255, 256, 320, 400, 480, 512, 640,
                                 641, 1000, 1024, 1282, 4093, 2 * 4093])


def native_rfft(x: np.ndarray) -> np.ndarray:
    """float32[n, lanes] -> complex128[n // 2 + 1, lanes] through the native FFT."""
    re, im = _frontend.rfft_lanes(np.ascontiguousarray(x, np.float32), x.shape[1])
    return re.astype(np.float64) + 1j * im.astype(np.float64)


@pytest.mark.parametrize("lanes", [1, 3, 8])
@pytest.mark.parametrize("n", LENGTHS)
def test_rfft_matches_numpy(n, lanes):
    x = np.random.default_rng(n * 10 + lanes).standard_normal((n, lanes)).astype(np.float32)
    expected = np.fft.rfft(x.astype(np.float64), axis=0)
    # Tolerance: float32 arithmetic (eps 6e-8) through log2(n) butterfly stages
    # (or the O(p) sums of a prime radix); output bins have rms sqrt(n), so
    # 1e-5 * sqrt(n) is ~50x the rounding error seen and far below any wrong
    # twiddle or index (errors of order sqrt(n)).
    np.testing.assert_allclose(native_rfft(x), expected, rtol=0, atol=1e-5 * np.sqrt(n))


@pytest.mark.parametrize("n", [5, 64, 320, 641])
def test_lanes_are_independent_and_bit_identical(n):
    """Frames computed side by side give exactly what each gives alone."""
    x = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
    together = native_rfft(x)
    for lane in range(8):
        alone = native_rfft(x[:, lane:lane + 1])
        np.testing.assert_array_equal(together[:, lane:lane + 1], alone)


@pytest.mark.parametrize("n", [12, 320, 640])
def test_pure_tones_land_in_their_bins(n):
    t = np.arange(n)
    for k in (0, 1, n // 4, n // 2):
        x = np.cos(2 * np.pi * k * t / n).astype(np.float32)[:, None]
        spectrum = np.abs(native_rfft(x)[:, 0])
        expected = np.zeros(n // 2 + 1)
        expected[k] = n if k in (0, n // 2) else n / 2
        np.testing.assert_allclose(spectrum, expected, atol=1e-3)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        _frontend.rfft_lanes(np.zeros((0, 1), np.float32), 1)
    with pytest.raises(ValueError):
        _frontend.rfft_lanes(np.zeros((8, 2), np.float32), 3)


def test_every_length_is_planned_in_n_log_n():
    """A prime length used to run one O(p^2) butterfly (1 s a clip at 4093 with a step of 1):
    now no plan runs a butterfly above radix 7; lengths with a larger prime factor go
    through the chirp-z transform over a product of 2, 3 and 5."""
    for n in list(range(1, 700)) + [4093, 8186, 16381, 16384]:
        largest_radix, chirp_z_length = _frontend.fft_plan_shape(n)
        assert largest_radix <= 7, n
        m = n // 2 if n % 2 == 0 else n
        if chirp_z_length:
            assert chirp_z_length >= 2 * m - 1
            rest = chirp_z_length
            for p in (2, 3, 5):
                while rest % p == 0:
                    rest //= p
            assert rest == 1
    assert _frontend.fft_plan_shape(640) == (5, 0)  # the course's length: no chirp-z
    assert _frontend.fft_plan_shape(641)[1] == 1296  # 2 x 641 - 1 = 1281 -> 2^4 x 3^4
