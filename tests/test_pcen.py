"""The "pcen" feature kind: against its float64 reference, streaming against batch, in the sidecar."""
import numpy as np
import pytest

from native.feature_stream import FeatureStream
from native.frontend import Frontend, StreamingFrontend, hann_window, mel_weight_matrix, pcen_reference
from native.params import FrontendParams
from native.resample import resample_poly

PCEN = FrontendParams(feature_kind="pcen")  # the course's framing, 40 mel bins 20-4000 Hz: (49, 40)
PCEN_8K_PADDED = FrontendParams(feature_kind="pcen", sample_rate_hz=8000, frame_length_samples=200,
                                frame_step_samples=80, fft_length=256, num_mel_bins=24, upper_edge_hz=3800.0,
                                pcen_time_constant_ms=60.0, pcen_alpha=0.8, pcen_delta=10.0, pcen_power=0.25)
PCEN_NOISE_REDUCTION = FrontendParams(feature_kind="pcen", num_mel_bins=10, noise_reduction_time_constant_ms=200.0,
                                      noise_reduction_min_remaining=0.1)
CONFIGS = {"course": PCEN, "8khz_padded": PCEN_8K_PADDED, "noise_reduction": PCEN_NOISE_REDUCTION}


def speech_like(params, seed, seconds=1.0, level=0.3):
    """Noise under an envelope of loud and quiet stretches (float32, full scale 1)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * params.sample_rate_hz)
    envelope = np.repeat(rng.uniform(0.001, 1.0, 25), -(-n // 25))[:n]
    return (level * rng.standard_normal(n) * envelope).astype(np.float32)


def float64_chain(audio, params):
    """The whole "pcen" feature in float64 numpy: frames, Hann, |rfft|, mel, PCEN."""
    length, step = params.frame_length_samples, params.frame_step_samples
    frames = params.num_frames(audio.size)
    index = np.arange(length)[None, :] + step * np.arange(frames)[:, None]
    windowed = audio.astype(np.float64)[index] * hann_window(length).astype(np.float64)
    magnitude = np.abs(np.fft.rfft(windowed, n=params.fft_length))
    return pcen_reference(magnitude @ mel_weight_matrix(params).astype(np.float64), params)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_pcen_stage_matches_its_reference(name):
    """On the native magnitudes, the mel sum and PCEN agree with float64 to float32 rounding.

    Outputs are of order 0.1 to 1; float32 mel sums of positive terms and powf
    are good to a few 1e-7 relative, so 2e-6 absolute leaves margin (observed
    ~3e-7), while a wrong coefficient or a smoother one frame off moves values
    by 1e-3 and more.
    """
    params = CONFIGS[name]
    audio = speech_like(params, 1)
    magnitude = Frontend(params.replace(feature_kind="spectrogram", noise_reduction_time_constant_ms=0.0)
                         ).compute(audio).astype(np.float64)
    expected = pcen_reference(magnitude @ mel_weight_matrix(params).astype(np.float64), params)
    ours = Frontend(params).compute(audio)
    assert ours.shape == expected.shape == (params.num_frames(audio.size), params.num_mel_bins)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_pcen_matches_the_float64_chain(name):
    """From audio, against frames -> Hann -> |rfft| -> mel -> PCEN in float64.

    A mel energy with absolute error e moves the output by about
    power * e / (M ** alpha * sqrt(x + delta)): tiny except in the quietest
    bands of loud frames, where the FFT's float32 rounding (~1e-7 of the
    frame's peak) is a larger share of the energy. 1e-4 per value and a mean
    below 1e-6 (observed ~2e-6 and ~1e-7).
    """
    params = CONFIGS[name]
    audio = speech_like(params, 2)
    ours = Frontend(params).compute(audio)
    expected = float64_chain(audio, params)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)
    assert float(np.mean(np.abs(ours - expected))) < 1e-6


def test_reference_follows_the_formula_by_hand():
    params = FrontendParams(feature_kind="pcen", frame_step_samples=160)  # 10 ms: s = 0.025
    assert params.pcen_smoothing == pytest.approx(0.025, abs=1e-5)
    energies = np.array([[4.0], [1.0], [0.0]])
    s, alpha, delta, r, eps = params.pcen_smoothing, 0.98, 2.0, 0.5, 1e-6
    smooth = [4.0, (1 - s) * 4.0 + s * 1.0, (1 - s) ** 2 * 4.0 + (1 - s) * s * 1.0]
    expected = [(e / (eps + m) ** alpha + delta) ** r - delta ** r for e, m in zip([4.0, 1.0, 0.0], smooth)]
    np.testing.assert_allclose(pcen_reference(energies, params)[:, 0], expected, rtol=1e-12)


def test_noise_reduction_follows_its_formula_by_hand():
    params = FrontendParams(feature_kind="pcen", frame_step_samples=160, noise_reduction_time_constant_ms=100.0,
                            noise_reduction_min_remaining=0.25)
    n = params.noise_reduction_smoothing
    assert n == pytest.approx(1 - np.exp(-0.1), rel=1e-12)
    s, alpha, delta, r, eps = params.pcen_smoothing, 0.98, 2.0, 0.5, 1e-6
    energies = [2.0, 4.0, 1.0]
    noise = [2.0, (1 - n) * 2.0 + n * 4.0, (1 - n) ** 2 * 2.0 + (1 - n) * n * 4.0 + n * 1.0]
    smooth = [2.0, (1 - s) * 2.0 + s * 4.0, (1 - s) ** 2 * 2.0 + (1 - s) * s * 4.0 + s * 1.0]  # the whole energy
    left = [max(e - m, 0.25 * e) for e, m in zip(energies, noise)]  # the first frame keeps its quarter
    expected = [(e / (eps + m) ** alpha + delta) ** r - delta ** r for e, m in zip(left, smooth)]
    np.testing.assert_allclose(pcen_reference(np.array(energies)[:, None], params)[:, 0], expected, rtol=1e-12)
    assert params.replace(noise_reduction_time_constant_ms=0.0).noise_reduction_smoothing == 0.0


def test_noise_reduction_takes_out_steady_noise_and_keeps_onsets():
    rng = np.random.default_rng(9)
    noise = (0.05 * rng.standard_normal(32000)).astype(np.float32)
    burst = noise.copy()
    burst[24000:27200] += (0.5 * rng.standard_normal(3200)).astype(np.float32)  # 200 ms, 20 dB over the noise
    plain = Frontend(PCEN_NOISE_REDUCTION.replace(noise_reduction_time_constant_ms=0.0))
    reduced = Frontend(PCEN_NOISE_REDUCTION)
    steady = slice(20, 70)  # frames of noise alone, after the estimate has settled
    onset = slice(76, 84)
    # the noise alone falls toward zero, where PCEN alone keeps it near a constant (observed 0.04 against 0.32)
    assert reduced.compute(noise)[steady].mean() < 0.25 * plain.compute(noise)[steady].mean()
    # and the burst stands out of it further (observed 11.6 times the floor against 2.7)
    ratio = lambda features: features[onset].mean() / features[steady].mean()  # noqa: E731
    assert ratio(reduced.compute(burst)) > 3 * ratio(plain.compute(burst)) > 3


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("chunk_size", [1, 17, 101, "whole"])
def test_streaming_equals_batch_bit_for_bit(name, chunk_size):
    params = CONFIGS[name]
    audio = speech_like(params, 3, seconds=1.3)
    frame = params.frame_length_samples
    frontend = Frontend(params)
    for length in [frame, frame + 1, 9 * frame + 5, audio.size]:  # 9 frames and more: blocks of 8 and a rest
        clip = audio[:length]
        size = length if chunk_size == "whole" else chunk_size
        stream = StreamingFrontend(params)
        streamed = np.concatenate([stream.push(clip[i:i + size]) for i in range(0, length, size)])
        np.testing.assert_array_equal(streamed, frontend.compute(clip))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_stream_reset_restarts_the_smoother_and_batch_clips_are_independent(name):
    params = CONFIGS[name]  # with noise reduction, its estimate restarts too
    second = params.sample_rate_hz
    audio = speech_like(params, 4, seconds=2.0)
    stream = StreamingFrontend(params)
    stream.push(audio)
    stream.reset()
    np.testing.assert_array_equal(stream.push(audio[:second]), Frontend(params).compute(audio[:second]))
    clips = np.stack([audio[:second], audio[second:2 * second]])
    batch = Frontend(params).compute_batch(clips, num_threads=2)
    np.testing.assert_array_equal(batch[1], Frontend(params).compute(audio[second:2 * second]))


def test_feature_stream_with_pcen_equals_the_one_shot_chain():
    audio = speech_like(PCEN, 5, seconds=1.5)
    audio48 = resample_poly(audio, 3, 1)
    stream = FeatureStream(PCEN, 48000, window_rows=49, hop_frames=5)
    windows = []
    for start in range(0, audio48.size, 4799):
        stream.push(audio48[start:start + 4799])
        while (frame := stream.next_window()) >= 0:
            windows.append((frame, stream.window.copy()))
    stream.flush()
    while (frame := stream.next_window()) >= 0:
        windows.append((frame, stream.window.copy()))
    batch = Frontend(PCEN).compute(resample_poly(audio48, 1, 3))
    assert windows and windows[-1][0] == batch.shape[0] - 1
    for frame, window in windows:
        np.testing.assert_array_equal(window, batch[frame - 48:frame + 1])


def test_pcen_is_robust_to_the_level_where_log_mel_is_not():
    audio = speech_like(PCEN, 6, level=0.01)
    louder = (audio * np.float32(30.0)).astype(np.float32)  # +29.5 dB
    pcen = Frontend(PCEN)
    log_mel = Frontend(PCEN.replace(feature_kind="log_mel"))
    log_mel_shift = float(np.mean(log_mel.compute(louder) - log_mel.compute(audio)))
    assert log_mel_shift == pytest.approx(np.log(30.0), abs=0.05)  # the level goes straight through the log

    def relative_change(frontend):  # mean change against the features' own spread
        quiet, loud = frontend.compute(audio), frontend.compute(louder)
        return float(np.mean(np.abs(loud - quiet)) / np.std(quiet))

    # E / M**alpha scales by 30**(1 - alpha) = 1.07: PCEN barely moves (observed 0.11 against 3.1 for log-mel)
    assert relative_change(pcen) < 0.2
    assert relative_change(pcen) < 0.15 * relative_change(log_mel)


def test_a_live_stream_approaches_the_batch_features_of_the_same_second():
    """The documented train/device difference: history before the window, decaying by (1 - s) a frame."""
    audio = speech_like(PCEN, 7, seconds=3.0)
    stream = StreamingFrontend(PCEN)
    live = stream.push(audio)[-49:]  # the last second's frames, with two seconds of history
    last_second = audio[-(48 * 320 + 640):]
    batch = Frontend(PCEN).compute(last_second)  # the same 49 frames, smoother started afresh
    difference = np.abs(live - batch).max(axis=1)
    assert difference[0] > 0.1  # the start differs: the smoother's history (observed 0.44)
    assert difference[-1] < 0.1 * difference[0]  # and the difference fades: 0.95 ** 48 = 0.09 (observed 0.01)


def test_silence_gives_zero_and_stays_finite():
    silence = np.zeros(48000, np.float32)
    out = Frontend(PCEN).compute(silence)
    np.testing.assert_array_equal(out, np.zeros_like(out))  # (0 + delta) ** r - delta ** r
    audio = np.concatenate([speech_like(PCEN, 8), silence])  # loud, then a long digital silence
    stream = StreamingFrontend(PCEN)
    assert np.isfinite(stream.push(audio)).all()


def test_sidecar_round_trip_and_old_dicts_get_the_defaults():
    params = PCEN.replace(pcen_time_constant_ms=100.0, pcen_alpha=0.9, pcen_delta=1.5, pcen_power=0.3,
                          pcen_epsilon=1e-5)
    assert FrontendParams.from_json(params.to_json()) == params
    assert FrontendParams.from_json(PCEN_NOISE_REDUCTION.to_json()) == PCEN_NOISE_REDUCTION
    old = FrontendParams().to_dict()
    for key in [k for k in old if k.startswith(("pcen_", "noise_reduction_"))]:
        del old[key]
    restored = FrontendParams.from_dict(old)
    assert restored == FrontendParams() and restored.pcen_alpha == 0.98 and restored.pcen_time_constant_ms == 395.0
    assert restored.noise_reduction_time_constant_ms == 0.0  # sidecars before it: no noise reduction


@pytest.mark.parametrize("kwargs, message", [
    ({"pcen_alpha": 1.5}, "pcen_alpha"),
    ({"pcen_power": 0.0}, "pcen_power"),
    ({"pcen_delta": 0.0}, "pcen_delta"),
    ({"pcen_epsilon": 0.0}, "pcen_epsilon"),
    ({"pcen_time_constant_ms": -1.0}, "pcen_time_constant_ms"),
    ({"pcen_time_constant_ms": float("inf")}, "finite"),
    ({"num_mel_bins": 0}, "num_mel_bins"),
    ({"upper_edge_hz": 9000.0}, "above Nyquist"),
    ({"noise_reduction_time_constant_ms": -5.0}, "noise_reduction_time_constant_ms"),
    ({"noise_reduction_time_constant_ms": float("nan")}, "finite"),
    ({"noise_reduction_min_remaining": 1.5}, "noise_reduction_min_remaining"),
])
def test_bad_pcen_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrontendParams(feature_kind="pcen", **kwargs)


def test_noise_reduction_needs_pcen():
    with pytest.raises(ValueError, match="noise reduction is a stage of PCEN"):
        FrontendParams(feature_kind="log_mel", noise_reduction_time_constant_ms=395.0)


def test_the_smoothing_follows_the_time_constant_at_any_hop():
    for step in (80, 160, 320, 640):
        params = FrontendParams(feature_kind="pcen", frame_step_samples=step)
        # after one time constant of frames the smoother keeps exp(-1) of its start
        frames_per_time_constant = params.pcen_time_constant_ms / params.frame_step_ms
        assert (1 - params.pcen_smoothing) ** frames_per_time_constant == pytest.approx(np.exp(-1), rel=1e-9)
