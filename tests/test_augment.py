"""Augmentation parts, each on toy clips: length kept, level range, determinism with a seed, and its effect."""
import numpy as np
import pytest

from native.params import FrontendParams
from train.kws import augment
from train.kws.augment import AugmentConfig, augment_audio, augmented_features, speed_ratio, warp_mel_axis

RATE_HZ = 16000
OFF = AugmentConfig(time_shift_ms=0.0, noise_probability=0.0)  # only the part under test changes the audio


def tone_clips(frequencies_hz=(500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0), peak=0.5, seconds=(0.3, 0.7)):
    """int16[n, 16000]: a tone of each frequency between ``seconds``, faded in and out, silence around it."""
    t = np.arange(RATE_HZ) / RATE_HZ
    envelope = np.clip(np.minimum(t - seconds[0], seconds[1] - t) / 0.02, 0.0, 1.0)
    clips = [peak * envelope * np.sin(2 * np.pi * f * t) for f in frequencies_hz]
    return np.round(np.stack(clips) * 32767).astype(np.int16)


def peaks(audio):
    return np.abs(audio.astype(np.int32)).max(axis=1)


def dominant_hz(clip):
    spectrum = np.abs(np.fft.rfft(clip.astype(np.float64)))
    return np.argmax(spectrum) * RATE_HZ / len(clip)


def run(config, audio, seed=0):
    out = augment_audio(audio, config, RATE_HZ, np.random.default_rng(seed))
    assert out.shape == audio.shape and out.dtype == np.int16
    np.testing.assert_array_equal(out, augment_audio(audio, config, RATE_HZ, np.random.default_rng(seed)))
    return out


def test_the_default_recipe_is_time_shift_then_white_noise():
    """The delivered models' augmentation, drawn in this order, whatever parts were added since."""
    audio = tone_clips()
    config = AugmentConfig()
    out = run(config, audio, seed=4)
    rng = np.random.default_rng(4)
    max_shift = int(round(config.time_shift_ms * RATE_HZ / 1000))
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(audio))
    expected = np.zeros_like(audio)
    for row, shift in enumerate(shifts):
        expected[row] = np.roll(audio[row], shift)  # the tones sit in silence: a roll is a zero-filled shift
    noisy = rng.random(len(audio)) < config.noise_probability
    levels = rng.uniform(0.0, config.noise_max_amplitude, size=int(noisy.sum())) * 32768.0
    noise = rng.standard_normal((len(levels), audio.shape[1])) * levels[:, None]
    expected[noisy] = np.clip(np.rint(expected[noisy] + noise), -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(out, expected)
    features = augmented_features(audio, config, FrontendParams(), np.random.default_rng(4))
    from train.kws.features import compute_features

    np.testing.assert_array_equal(features, compute_features(expected, FrontendParams()))
    assert config.changes_audio and not augment.NO_AUGMENTATION.changes_audio


def test_speed_perturbation_keeps_the_length_and_moves_the_pitch():
    audio = tone_clips()
    assert speed_ratio(1.1) == (10, 11) and speed_ratio(0.9) == (10, 9) and speed_ratio(1.0) == (1, 1)
    for speed in (0.9, 1.1):
        out = run(OFF.replace(speed_probability=1.0, min_speed=speed, max_speed=speed), audio)
        for clip, changed, frequency in zip(audio, out, (500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0)):
            assert dominant_hz(changed) == pytest.approx(frequency * speed, abs=2.0)
            assert abs(int(peaks(changed[None])[0]) - int(peaks(clip[None])[0])) < 0.02 * peaks(clip[None])[0]
        # the tone lasts 0.4 s / speed, centred as before
        active = np.flatnonzero(np.abs(out[0]) > 0.1 * 32767)
        assert (active[-1] - active[0]) / RATE_HZ == pytest.approx(0.4 / speed, abs=0.03)
        assert (active[-1] + active[0]) / 2 / RATE_HZ == pytest.approx(0.5, abs=0.02)
    varied = run(OFF.replace(speed_probability=1.0), audio, seed=1)
    assert not np.array_equal(varied, run(OFF.replace(speed_probability=1.0), audio, seed=2))


def test_reverberation_keeps_length_and_peak_and_rings_after_the_word():
    audio = tone_clips()
    config = OFF.replace(reverb_probability=1.0, min_rt60_s=0.8, max_rt60_s=1.0, reverb_bank_size=4)
    out = run(config, audio)
    assert np.all(np.abs(peaks(out) - peaks(audio)) <= 1)
    after = slice(int(0.72 * RATE_HZ), int(0.9 * RATE_HZ))  # the dry tone has ended here
    assert np.all(np.abs(audio[:, after]).max(axis=1) == 0)
    assert np.all(np.sqrt(np.mean(out[:, after].astype(float) ** 2, axis=1)) > 0.01 * peaks(audio))
    assert not np.array_equal(out, run(config, audio, seed=1))
    short = run(config.replace(min_rt60_s=0.2, max_rt60_s=0.2), audio)
    assert np.sum(short[:, after].astype(float) ** 2) < np.sum(out[:, after].astype(float) ** 2)


def test_the_microphone_band_limits_and_tilts():
    chord = (tone_clips((150.0,)) // 3 + tone_clips((1000.0,)) // 3 + tone_clips((6000.0,)) // 3)
    config = OFF.replace(microphone_probability=1.0, min_highpass_hz=400.0, max_highpass_hz=400.0,
                         min_lowpass_hz=3000.0, max_lowpass_hz=3000.0, max_tilt_db_per_octave=0.0)
    out = run(config, chord)
    assert np.all(np.abs(peaks(out) - peaks(chord)) <= 1)  # the level is kept
    before, after = (np.abs(np.fft.rfft(clip[0].astype(float))) for clip in (chord, out))
    for frequency_hz, corner_ratio in ((150, 400 / 150), (6000, 6000 / 3000)):
        # each tone against the 1 kHz one, as the 2nd-order Butterworth corners at 400 Hz and 3 kHz shape them
        expected = 1 / np.sqrt(1 + corner_ratio ** 4)
        measured = (after[frequency_hz] / after[1000]) / (before[frequency_hz] / before[1000])
        assert measured == pytest.approx(expected, rel=0.05) and expected < 0.25
    tilted, flat = (augment.microphone_response(8001, RATE_HZ, np.array([50.0]), np.array([7600.0]),
                                                np.array([tilt]))[0] for tilt in (3.0, 0.0))
    tilt_db = 20 * np.log10(tilted / flat)  # the tilt alone: 0 dB at 1 kHz, +3 dB per octave above
    for hz, octaves in ((1000, 0), (2000, 1), (4000, 2), (250, -2)):
        assert tilt_db[hz] == pytest.approx(3.0 * octaves, abs=0.01)


def test_gain_to_a_peak_level_in_dbfs():
    audio = tone_clips()
    config = OFF.replace(gain_probability=1.0, gain_to_peak_dbfs=True, min_gain_db=-45.0, max_gain_db=0.0)
    out = run(config, np.concatenate([audio] * 5))
    levels = 20 * np.log10(peaks(out) / 32768)
    assert levels.min() >= -45.1 and levels.max() <= 0.0 and levels.max() - levels.min() > 20
    fixed = run(config.replace(min_gain_db=-40.0, max_gain_db=-40.0), audio)
    assert np.all(np.abs(peaks(fixed) - 10 ** (-40 / 20) * 32768) <= 1)
    with pytest.raises(ValueError, match="above full scale"):
        AugmentConfig(gain_to_peak_dbfs=True, max_gain_db=3.0)


def measured_snr_db(clean, noisy):
    """SNR of ``noisy`` = c * clean + noise: c by projection, the signal over the active part as mixed."""
    clean, noisy = clean.astype(np.float64), noisy.astype(np.float64)
    scale = np.dot(noisy, clean) / np.dot(clean, clean)
    noise = noisy - scale * clean
    signal_rms = augment.active_rms((scale * clean)[None] / 32768, RATE_HZ)[0]
    return 20 * np.log10(signal_rms / (np.sqrt(np.mean(noise ** 2)) / 32768))


@pytest.mark.parametrize("part", ["babble_probability", "coloured_noise_probability"])
def test_babble_and_coloured_noise_at_the_drawn_snr(part):
    audio = tone_clips()
    for snr_db in (5.0, 20.0):
        config = OFF.replace(**{part: 1.0}, min_snr_db=snr_db, max_snr_db=snr_db)
        out = run(config, audio)
        assert np.all(np.abs(peaks(out) - peaks(audio)) <= 1)
        for clean, noisy in zip(audio, out):
            assert measured_snr_db(clean, noisy) == pytest.approx(snr_db, abs=1.0)
    assert not np.array_equal(run(config, audio, seed=1), run(config, audio, seed=2))


def test_noise_in_the_room_rings_with_the_word_and_changes_nothing_without_a_room():
    audio = tone_clips()
    noisy = OFF.replace(coloured_noise_probability=1.0, min_snr_db=10.0, max_snr_db=10.0)
    # without a room or a microphone the order of the stages is all that changes: the same audio
    np.testing.assert_array_equal(run(noisy.replace(noise_in_room=True), audio), run(noisy, audio))
    in_room = noisy.replace(reverb_probability=1.0, min_rt60_s=1.0, max_rt60_s=1.0, reverb_bank_size=1)
    dry, wet = run(in_room, audio), run(in_room.replace(noise_in_room=True), audio)
    assert np.all(np.abs(peaks(wet) - peaks(audio)) <= 1) and not np.array_equal(dry, wet)
    # babble of words that end by 0.6 s (0.35 s, shifted by up to a quarter second): heard dry it stops there,
    # heard in the room it rings on after it, with the word's own tail
    early = tone_clips(seconds=(0.05, 0.35))
    talkers = OFF.replace(babble_probability=1.0, min_snr_db=0.0, max_snr_db=0.0, reverb_probability=1.0,
                          min_rt60_s=1.0, max_rt60_s=1.0)
    after = slice(int(0.65 * RATE_HZ), int(0.95 * RATE_HZ))

    def tail_energy(clips):
        return np.sum(clips[:, after].astype(np.float64) ** 2)

    assert tail_energy(run(talkers.replace(noise_in_room=True), early)) > 1.5 * tail_energy(run(talkers, early))


def test_babble_is_made_of_the_other_clips_of_the_batch():
    """One loud clip among silent ones: no other clip has anything to add, so it stays as it was."""
    audio = np.zeros((5, RATE_HZ), np.int16)
    audio[0] = tone_clips((700.0,))[0]
    out = run(OFF.replace(babble_probability=1.0, min_snr_db=0.0, max_snr_db=0.0), audio)
    np.testing.assert_array_equal(out, audio)
    draws = augment._draw_room(50, RATE_HZ, OFF.replace(babble_probability=1.0, babble_talkers=6), RATE_HZ,
                               np.random.default_rng(0))
    assert draws.others.shape == (50, 6) and not np.any(draws.others == np.arange(50)[:, None])
    assert draws.others.min() >= 0 and draws.others.max() <= 49


def test_babble_of_other_words_takes_its_talkers_from_the_named_rows_only():
    """Rows 0-1 are words at 300 Hz, rows 2-4 "keywords" (2 kHz), rows 5-7 "other words" (5 kHz): with
    the other words named, the babble under a word holds 5 kHz and no 2 kHz (with any clip as a talker,
    it does); off, the named rows change nothing."""
    audio = tone_clips((300.0, 300.0, 2000.0, 2000.0, 2000.0, 5000.0, 5000.0, 5000.0))
    config = OFF.replace(babble_probability=1.0, babble_talkers=3, babble_of_other_words=True,
                         min_snr_db=0.0, max_snr_db=0.0)
    out = augment_audio(audio, config, RATE_HZ, np.random.default_rng(0), babble_rows=np.array([5, 6, 7]))
    anyone = augment_audio(audio, config.replace(babble_of_other_words=False), RATE_HZ, np.random.default_rng(0))
    for row in (0, 1):  # 1 Hz bins; the word itself is at 300 Hz
        spectrum = np.abs(np.fft.rfft(out[row].astype(np.float64)))
        assert spectrum[5000] > 100 * spectrum[2000]
    assert max(np.abs(np.fft.rfft(anyone[row].astype(np.float64)))[2000] for row in (0, 1)) > 100 * max(
        np.abs(np.fft.rfft(out[row].astype(np.float64)))[2000] for row in (0, 1))
    plain = OFF.replace(babble_probability=1.0, min_snr_db=0.0, max_snr_db=0.0)
    np.testing.assert_array_equal(
        augment_audio(audio, plain, RATE_HZ, np.random.default_rng(3), babble_rows=np.array([5, 6, 7])),
        augment_audio(audio, plain, RATE_HZ, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="needs babble_rows"):
        augment_audio(audio, config, RATE_HZ, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least two"):
        augment_audio(audio, config, RATE_HZ, np.random.default_rng(0), babble_rows=np.array([5]))
    with pytest.raises(ValueError, match="at least two"):
        augment_audio(audio, config, RATE_HZ, np.random.default_rng(0), babble_rows=np.array([5, 8]))


def test_the_talkers_of_a_babble_of_other_words_are_every_named_row_but_the_clip_itself():
    talkers = augment._talkers_from(np.array([7, 2, 5, 2]), 10, 4, np.random.default_rng(0))
    assert talkers.shape == (10, 4) and set(np.unique(talkers)) == {2, 5, 7}
    assert not np.any(talkers == np.arange(10)[:, None])
    many = augment._talkers_from(np.array([2, 5, 7]), 3000, 3, np.random.default_rng(1))
    counts = np.bincount(many[8:].ravel(), minlength=8)[[2, 5, 7]]  # rows outside the pool: all three alike
    assert counts.min() > 0.9 * counts.max()


def test_vtlp_warps_the_mel_axis_and_leaves_warp_one_unchanged():
    from train.kws.features import compute_features

    audio = tone_clips((1000.0, 2000.0))
    for kind in ("log_mel", "mfcc"):
        params = FrontendParams(feature_kind=kind)
        config = OFF.replace(vtlp_probability=1.0, min_vtlp_warp=1.0, max_vtlp_warp=1.0)
        same = augmented_features(audio, config, params, np.random.default_rng(0))
        np.testing.assert_allclose(same, compute_features(audio, params), rtol=1e-5, atol=1e-4)
    params = FrontendParams(feature_kind="log_mel")
    log_mel = compute_features(audio, params)
    warped = warp_mel_axis(log_mel, np.array([1.1, 0.9]), params)
    assert warped.shape == log_mel.shape and warped.dtype == np.float32
    centres_hz = 700 * np.expm1(np.linspace(1127 * np.log1p(20 / 700), 1127 * np.log1p(4000 / 700), 42)[1:-1] / 1127)
    loudest = warped[:, 25].argmax(axis=1)  # the middle frame, inside the tone
    assert centres_hz[loudest[0]] == pytest.approx(1100, rel=0.06)  # 1 kHz read as a 10 % shorter tract
    assert centres_hz[loudest[1]] == pytest.approx(1800, rel=0.06)  # 2 kHz, 10 % longer
    config = OFF.replace(vtlp_probability=1.0)
    first = augmented_features(audio, config, params, np.random.default_rng(3))
    np.testing.assert_array_equal(first, augmented_features(audio, config, params, np.random.default_rng(3)))
    assert not np.array_equal(first, augmented_features(audio, config, params, np.random.default_rng(4)))
    with pytest.raises(ValueError, match="VTLP warps log-mel or MFCC"):
        augmented_features(audio, config, FrontendParams(feature_kind="spectrogram"), np.random.default_rng(0))


def test_every_part_at_once_keeps_length_and_range_and_silence():
    audio = np.concatenate([tone_clips(), np.zeros((2, RATE_HZ), np.int16)])
    config = AugmentConfig(speed_probability=0.5, reverb_probability=0.5, reverb_bank_size=3,
                           microphone_probability=0.5, babble_probability=0.3, coloured_noise_probability=0.3,
                           gain_probability=0.5, gain_to_peak_dbfs=True, min_gain_db=-45.0)
    out = run(config, audio, seed=5)
    assert np.abs(out[-2:]).max() < 0.04 * 32768  # silence gets only the white noise floor
    assert np.all(peaks(out[:-2]) <= 32767)


def test_bad_configs_are_refused():
    for changes, message in (({"speed_probability": 1.5}, "speed_probability must lie"),
                             ({"min_snr_db": 30.0}, "min_snr_db"),
                             ({"babble_probability": 0.7, "coloured_noise_probability": 0.5}, "at most 1"),
                             ({"speed_probability": 0.5, "min_speed": 0.2}, "speed factors"),
                             ({"vtlp_probability": 0.5, "max_vtlp_warp": 3.0}, "VTLP warps")):
        with pytest.raises(ValueError, match=message):
            AugmentConfig(**changes)
    with pytest.raises(ValueError, match="int16"):
        augment_audio(np.zeros((2, 100), np.float32), AugmentConfig(), RATE_HZ, np.random.default_rng(0))
