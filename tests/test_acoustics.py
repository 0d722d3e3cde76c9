"""train.kws.acoustics: noise colours, hum, levels, SNR mixing, babble, room impulse responses."""
import math

import numpy as np
import pytest

from train.kws import acoustics

RATE_HZ = 16000


def rng(seed=0):
    return np.random.default_rng(seed)


def tone(num_samples=RATE_HZ, frequency_hz=440.0, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * frequency_hz * np.arange(num_samples) / RATE_HZ)).astype(np.float32)


def band_power(audio, low_hz, high_hz):
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    frequencies_hz = np.fft.rfftfreq(audio.size, 1.0 / RATE_HZ)
    return spectrum[(frequencies_hz >= low_hz) & (frequencies_hz < high_hz)].mean()


def test_rms_and_peak_dbfs_of_known_signals():
    assert acoustics.rms_dbfs(tone(amplitude=1.0)) == pytest.approx(-3.0103, abs=1e-3)
    assert acoustics.rms_dbfs(np.full(100, 0.1, np.float32)) == pytest.approx(-20.0, abs=1e-4)
    assert acoustics.rms_dbfs(np.full(100, 3277, np.int16)) == pytest.approx(20 * math.log10(3277 / 32768), abs=1e-4)
    assert acoustics.rms_dbfs(np.zeros(10, np.float32)) == -math.inf
    assert acoustics.peak_dbfs(tone(amplitude=0.5)) == pytest.approx(-6.0206, abs=1e-3)
    with pytest.raises(ValueError, match="NaN"):
        acoustics.rms_dbfs(np.array([0.0, np.nan], np.float32))


def test_active_level_ignores_padding():
    word = np.zeros(RATE_HZ, np.float32)
    word[4000:8000] = tone(4000, amplitude=0.1)
    assert acoustics.active_rms_dbfs(word) == pytest.approx(acoustics.rms_dbfs(tone(4000, amplitude=0.1)), abs=0.1)
    assert acoustics.rms_dbfs(word) < acoustics.active_rms_dbfs(word) - 5


@pytest.mark.parametrize("kind,low_over_high_db", [("white", (-2, 2)), ("pink", (12, 20)), ("brown", (30, 40))])
def test_coloured_noise_has_unit_rms_the_length_and_its_slope(kind, low_over_high_db):
    noise = acoustics.coloured_noise(kind, 32000, rng())
    assert noise.dtype == np.float32 and noise.shape == (32000,)
    assert acoustics.rms_dbfs(noise) == pytest.approx(0.0, abs=1e-4)
    # 100-200 Hz against 3.2-6.4 kHz: five octaves apart, so pink falls 15 dB and brown 30 dB.
    ratio_db = 10 * math.log10(band_power(noise, 100, 200) / band_power(noise, 3200, 6400))
    assert low_over_high_db[0] < ratio_db < low_over_high_db[1]
    assert abs(float(noise.mean())) < 0.05


def test_coloured_noise_is_deterministic_and_checks_its_kind():
    np.testing.assert_array_equal(acoustics.coloured_noise("pink", 1000, rng(3)),
                                  acoustics.coloured_noise("pink", 1000, rng(3)))
    assert not np.array_equal(acoustics.coloured_noise("pink", 1000, rng(3)),
                              acoustics.coloured_noise("pink", 1000, rng(4)))
    assert acoustics.coloured_noise("brown", 0, rng()).shape == (0,)
    with pytest.raises(ValueError, match="violet"):
        acoustics.coloured_noise("violet", 10, rng())


@pytest.mark.parametrize("mains_hz", [50, 60])
def test_hum_sits_at_the_mains_frequency_and_harmonics(mains_hz):
    signal = acoustics.hum(RATE_HZ, sample_rate_hz=RATE_HZ, mains_hz=mains_hz, rng=rng())
    assert signal.shape == (RATE_HZ,) and acoustics.rms_dbfs(signal) == pytest.approx(0.0, abs=1e-4)
    spectrum = np.abs(np.fft.rfft(signal)) ** 2  # 1 Hz bins
    near_harmonics = sum(spectrum[h * mains_hz - 2:h * mains_hz + 3].sum() for h in range(1, 9))
    assert near_harmonics / spectrum.sum() > 0.95
    np.testing.assert_array_equal(signal, acoustics.hum(RATE_HZ, mains_hz=mains_hz, rng=rng()))
    with pytest.raises(ValueError, match="mains_hz"):
        acoustics.hum(10, mains_hz=55, rng=rng())


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_mix_at_snr_sets_the_ratio_over_the_active_part(snr_db):
    word = np.zeros(RATE_HZ, np.float32)
    word[5000:9000] = tone(4000, amplitude=0.2)
    noise = acoustics.coloured_noise("white", RATE_HZ, rng())
    mixed = acoustics.mix_at_snr(word, noise, snr_db)
    assert mixed.dtype == np.float32 and mixed.shape == word.shape
    measured_db = acoustics.active_rms_dbfs(word) - acoustics.rms_dbfs(mixed - word)
    assert measured_db == pytest.approx(snr_db, abs=0.01)


def test_mix_at_snr_refuses_what_has_no_ratio():
    noise = acoustics.coloured_noise("white", 100, rng())
    with pytest.raises(ValueError, match="length"):
        acoustics.mix_at_snr(tone(50), noise, 10)
    with pytest.raises(ValueError, match="signal is silent"):
        acoustics.mix_at_snr(np.zeros(100, np.float32), noise, 10)
    with pytest.raises(ValueError, match="noise is silent"):
        acoustics.mix_at_snr(tone(100), np.zeros(100, np.float32), 10)


def test_scale_to_peak_dbfs():
    scaled = acoustics.scale_to_peak_dbfs(tone(amplitude=0.01), -6.0)
    assert acoustics.peak_dbfs(scaled) == pytest.approx(-6.0, abs=1e-4)
    assert scaled.shape == (RATE_HZ,) and scaled.dtype == np.float32
    assert not acoustics.scale_to_peak_dbfs(np.zeros(5, np.float32), -6.0).any()
    with pytest.raises(ValueError, match="peak_dbfs"):
        acoustics.scale_to_peak_dbfs(tone(), 3.0)


def test_babble_sums_several_shifted_talkers_at_the_loudest_peak():
    clips = np.zeros((6, RATE_HZ), np.float32)
    for row in range(6):  # one tone per "talker", each in the middle of its clip
        clips[row, 6000:10000] = tone(4000, frequency_hz=300 + 200 * row, amplitude=0.1 + 0.05 * row)
    mixed = acoustics.babble(clips, talkers=4, rng=rng(1))
    assert mixed.shape == (RATE_HZ,) and mixed.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(mixed)) ** 2
    talkers_heard = sum(spectrum[300 + 200 * row - 3:300 + 200 * row + 4].sum() > 0.05 * spectrum.sum()
                        for row in range(6))
    assert talkers_heard == 4
    assert acoustics.peak_dbfs(mixed) <= acoustics.peak_dbfs(clips[5]) + 1e-4
    np.testing.assert_array_equal(mixed, acoustics.babble(clips, talkers=4, rng=rng(1)))
    with pytest.raises(ValueError, match="at least as many clips"):
        acoustics.babble(clips, talkers=7, rng=rng())


def test_babble_is_its_talkers_summed_and_scaled_and_says_who_leads():
    clips = np.zeros((6, RATE_HZ), np.float32)
    for row in range(6):
        clips[row, 6000:10000] = tone(4000, frequency_hz=300 + 200 * row, amplitude=0.1 + 0.05 * row)
    clips[2] = 0.0  # a silent talker among them contributes nothing
    rows, parts = acoustics.babble_talkers(clips, talkers=4, rng=rng(1))
    assert parts.shape == (4, RATE_HZ) and len(set(rows.tolist())) == 4
    np.testing.assert_array_equal(acoustics.babble_mix(clips, rows, parts),
                                  acoustics.babble(clips, talkers=4, rng=rng(1)))
    # The same bytes as babble made them in one loop before it was split in two (the negatives' caches hold them).
    for seed in range(1, 6):
        draws = rng(seed)
        chosen = draws.choice(6, size=4, replace=False)
        gains_db = draws.uniform(-6.0, 0.0, size=4)
        shifts = draws.integers(-4000, 4001, size=4)
        total, loudest_peak = np.zeros(RATE_HZ), 0.0
        for row, gain_db, shift in zip(chosen, gains_db, shifts):
            loudest_peak = max(loudest_peak, float(np.abs(clips[row]).max()))
            level_db = acoustics.active_rms_dbfs(clips[row])
            if np.isfinite(level_db):
                total += acoustics.shift_with_zeros(clips[row] * 10.0 ** ((gain_db - level_db) / 20.0), int(shift))
        expected = (total * (loudest_peak / np.abs(total).max())).astype(np.float32)
        np.testing.assert_array_equal(acoustics.babble(clips, talkers=4, rng=rng(seed)), expected)
    with pytest.raises(ValueError, match="one part per row"):
        acoustics.babble_mix(clips, rows[:3], parts)
    with pytest.raises(ValueError, match="samples"):
        acoustics.babble_mix(clips, rows, parts[:, :100])
    for row, part in zip(rows, parts):  # each part is its own talker's tone, brought to unit active level
        if row == 2:
            assert not part.any()
            continue
        spectrum = np.abs(np.fft.rfft(part)) ** 2
        frequency_hz = 300 + 200 * int(row)
        assert spectrum[frequency_hz - 30:frequency_hz + 31].sum() > 0.95 * spectrum.sum()
        assert -6.01 <= acoustics.active_rms_dbfs(part.astype(np.float32)) <= 0.01
    # Energies 4, 1 and 1: the leader has twice the rest, 3.01 dB; as much as the rest, 0 dB.
    unit = np.ones(100)
    assert acoustics.leader_over_rest_db(np.stack([2 * unit, unit, unit])) == pytest.approx(3.0103, abs=1e-4)
    assert acoustics.leader_over_rest_db(np.stack([np.sqrt(2) * unit, unit, unit])) == pytest.approx(0.0, abs=1e-9)
    assert acoustics.leader_over_rest_db(np.stack([unit, 0 * unit])) == np.inf
    assert np.isnan(acoustics.leader_over_rest_db(np.zeros((3, 100))))


@pytest.mark.parametrize("rt60_s", [0.15, 0.4, 0.8, 1.5])
@pytest.mark.parametrize("direct_to_reverberant_db", [0.0, 8.0])
def test_room_impulse_response_has_the_requested_rt60(rt60_s, direct_to_reverberant_db):
    response = acoustics.room_impulse_response(rt60_s=rt60_s, sample_rate_hz=RATE_HZ, rng=rng(int(rt60_s * 100)),
                                               direct_to_reverberant_db=direct_to_reverberant_db)
    assert response.dtype == np.float32 and response.shape == (round(1.4 * rt60_s * RATE_HZ),)
    assert np.sum(response.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-5)
    assert acoustics.measure_rt60_s(response, sample_rate_hz=RATE_HZ) == pytest.approx(rt60_s, rel=0.15)
    direct_energy = float(response[0]) ** 2
    assert 10 * math.log10(direct_energy / (1 - direct_energy)) == pytest.approx(direct_to_reverberant_db, abs=0.01)


def test_room_impulse_response_is_deterministic_and_checks_rt60():
    first = acoustics.room_impulse_response(rt60_s=0.3, rng=rng(5))
    np.testing.assert_array_equal(first, acoustics.room_impulse_response(rt60_s=0.3, rng=rng(5)))
    assert not np.array_equal(first, acoustics.room_impulse_response(rt60_s=0.3, rng=rng(6)))
    with pytest.raises(ValueError, match="rt60_s"):
        acoustics.room_impulse_response(rt60_s=10.0, rng=rng())


def test_reverberate_keeps_length_and_is_a_truncated_convolution():
    audio = acoustics.coloured_noise("white", 8000, rng()) * 0.1
    response = acoustics.room_impulse_response(rt60_s=0.1, rng=rng(2))
    wet = acoustics.reverberate(audio, response)
    assert wet.shape == audio.shape and wet.dtype == np.float32
    np.testing.assert_allclose(wet, np.convolve(audio, response)[:audio.size], atol=1e-6)
    assert acoustics.reverberate(audio, np.array([1.0], np.float32)) == pytest.approx(audio, abs=1e-7)
    # A unit-energy response keeps white noise near its level.
    assert acoustics.rms_dbfs(wet[response.size:]) == pytest.approx(acoustics.rms_dbfs(audio), abs=1.5)
