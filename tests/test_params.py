"""FrontendParams and ModelInput: pinned defaults, validation, exact round trips."""
import json
from pathlib import Path

import pytest

from native.params import FrontendParams, ModelInput, checked_resize


def test_defaults_are_the_course_configuration():
    # Pinned: changing a default silently changes every model trained without flags.
    assert FrontendParams().to_dict() == {
        "sample_rate_hz": 16000, "frame_length_samples": 640, "frame_step_samples": 320,
        "fft_length": 640, "window": "hann", "feature_kind": "mfcc", "num_mel_bins": 40,
        "lower_edge_hz": 20.0, "upper_edge_hz": 4000.0, "num_mfccs": 10, "log_offset": 1e-6,
        "pcen_time_constant_ms": 395.0, "pcen_alpha": 0.98, "pcen_delta": 2.0, "pcen_power": 0.5,
        "pcen_epsilon": 1e-6, "noise_reduction_time_constant_ms": 0.0, "noise_reduction_min_remaining": 0.05,
    }


def test_derived_sizes():
    params = FrontendParams()
    assert ModelInput().clip_length_samples == 16000 and ModelInput().to_dict() == {"clip_duration_ms": 1000,
                                                                                    "resize": None}
    assert params.num_frames(16000) == 49
    assert ModelInput().feature_shape == ModelInput().frame_shape == (49, 10)
    assert params.frame_length_ms == 40.0 and params.frame_step_ms == 20.0
    assert params.num_frames(639) == 0 and params.num_frames(640) == 1 and params.num_frames(959) == 1
    eight_khz = FrontendParams(sample_rate_hz=8000, frame_length_samples=320, frame_step_samples=160)
    assert ModelInput(frontend=eight_khz).feature_shape == (49, 10)
    assert ModelInput(frontend=eight_khz, clip_duration_ms=500).clip_length_samples == 4000
    assert FrontendParams(frame_length_samples=480, frame_step_samples=320, fft_length=512).num_fft_bins == 257
    spectrogram = ModelInput(frontend=FrontendParams(feature_kind="spectrogram", frame_length_samples=256,
                                                     frame_step_samples=128), resize=(32, 32))
    assert spectrogram.feature_shape == (32, 32) and spectrogram.frame_shape == (124, 129)
    assert ModelInput(frontend=FrontendParams(feature_kind="log_mel")).feature_shape == (49, 40)


@pytest.mark.parametrize("params", [
    FrontendParams(),
    FrontendParams(feature_kind="spectrogram", frame_length_samples=256, frame_step_samples=128),
    FrontendParams(sample_rate_hz=8000, frame_length_samples=320, frame_step_samples=160, upper_edge_hz=4000.0),
    FrontendParams(feature_kind="log_mel", lower_edge_hz=125.5, log_offset=1e-3),
    FrontendParams(feature_kind="pcen", num_mel_bins=32, pcen_time_constant_ms=60.0, pcen_alpha=0.8),
])
def test_round_trip_is_exact(params):
    assert FrontendParams.from_dict(params.to_dict()) == params
    assert FrontendParams.from_json(params.to_json()) == params
    assert json.loads(params.to_json()) == params.to_dict()


@pytest.mark.parametrize("kwargs, message", [
    ({"fft_length": 512}, "shorter than frame_length"),
    ({"upper_edge_hz": 9000.0}, "above Nyquist"),
    ({"num_mfccs": 41}, "num_mfccs"),
    ({"feature_kind": "mel"}, "feature_kind"),
    ({"window": "hamming"}, "window"),
    ({"lower_edge_hz": 4000.0}, "lower_edge_hz"),
    ({"sample_rate_hz": 0}, "sample_rate_hz"),
    ({"frame_step_samples": 0}, "frame_step_samples"),
    ({"frame_length_samples": 640.5}, "integer"),
    ({"upper_edge_hz": float("nan")}, "finite"),
    ({"bins": 40}, "unknown frontend parameter"),
    ({"resize": (32, 32)}, "unknown frontend parameter"),  # the model input's, not the frames'
    ({"clip_duration_ms": 1000}, "unknown frontend parameter"),
    # sane ranges: a sidecar must not make the device allocate gigabytes (each of these used to)
    ({"fft_length": 2 ** 26}, "fft_length must be at most 16384"),
    ({"fft_length": 2 ** 31}, "fft_length must be at most 16384"),
    ({"num_mel_bins": 10 ** 6}, "num_mel_bins must be from 1 to 512"),
    ({"sample_rate_hz": float("inf")}, "sample_rate_hz must be an integer, got inf"),
    ({"sample_rate_hz": float("nan")}, "sample_rate_hz must be an integer"),
    ({"num_mfccs": float("-inf")}, "num_mfccs must be an integer"),
    ({"sample_rate_hz": 500}, "sample_rate_hz must be from 1000 to 192000"),
    ({"sample_rate_hz": 10 ** 6}, "sample_rate_hz must be from 1000 to 192000"),
    ({"frame_step_samples": 10 ** 12}, "frame_step_samples must be from 1 to 65536"),
    ({"log_offset": float("inf")}, "finite"),
])
def test_bad_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrontendParams(**kwargs)


SPECTROGRAM = FrontendParams(feature_kind="spectrogram")


@pytest.mark.parametrize("kwargs, message", [
    ({"resize": (32, 32)}, "resize applies to feature_kind='spectrogram' only"),
    ({"clip_duration_ms": 10}, "shorter than one frame"),
    ({"clip_duration_ms": 10 ** 9}, "clip_duration_ms must be from 1 to 60000"),
    ({"clip_duration_ms": 1000.5}, "clip_duration_ms must be an integer"),
    ({"frontend": FrontendParams(feature_kind="spectrogram", frame_step_samples=1, fft_length=4096),
      "clip_duration_ms": 60000}, "feature values"),
    ({"frontend": SPECTROGRAM, "resize": (2 ** 13, 2 ** 13)}, "at most 16777216 values"),
    ({"frontend": SPECTROGRAM, "resize": (0, 32)}, "resize must be positive"),
    ({"frontend": SPECTROGRAM, "resize": 32}, r"resize must be \(frames, bins\)"),
    ({"frontend": {"feature_kind": "mfcc"}}, "frontend must be a FrontendParams"),
])
def test_bad_model_inputs_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelInput(**kwargs)


@pytest.mark.parametrize("model_input", [
    ModelInput(), ModelInput(frontend=SPECTROGRAM, resize=(32, 32)),
    ModelInput(frontend=FrontendParams(feature_kind="log_mel"), clip_duration_ms=1500),
])
def test_model_input_round_trips(model_input):
    assert ModelInput.from_dict(model_input.to_dict(), frontend=model_input.frontend) == model_input
    assert ModelInput.from_frontend_dict({**model_input.frontend.to_dict(), **model_input.to_dict()}) == model_input
    assert model_input.replace(clip_duration_ms=500).clip_duration_ms == 500
    assert hash(model_input) == hash(ModelInput.from_dict(json.loads(json.dumps(model_input.to_dict())),
                                                          frontend=model_input.frontend))
    with pytest.raises(ValueError, match="unknown model input key"):
        ModelInput.from_dict({**model_input.to_dict(), "bins": 3}, frontend=model_input.frontend)


def test_checked_resize():
    assert checked_resize(None) is None and checked_resize([32.0, 16]) == (32, 16)
    with pytest.raises(ValueError, match="integer"):
        checked_resize((32.5, 16))


def test_positional_arguments_are_refused():
    with pytest.raises(TypeError):
        FrontendParams(16000)  # noqa


def test_frozen_and_hashable():
    params = FrontendParams()
    with pytest.raises(AttributeError):
        params.num_mfccs = 13
    assert hash(params) == hash(FrontendParams())
    assert params.replace(num_mfccs=13).num_mfccs == 13


def test_any_fft_length_up_to_the_cap_is_accepted():
    for n in (641, 4093, 2 * 127, 7 * 11 * 13, 16384):
        assert FrontendParams(feature_kind="spectrogram", frame_length_samples=min(n, 640), fft_length=n,
                              frame_step_samples=160).fft_length == n


def test_old_sidecar_values_still_load():
    """Every configuration the delivered models and the seeds use stays valid (a version-1
    frontend holds the model input's two keys too)."""
    for path in sorted((Path(__file__).resolve().parent.parent / "models").rglob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "frontend" in data:
            if "input" in data:
                ModelInput.from_dict(data["input"], frontend=FrontendParams.from_dict(data["frontend"]))
            else:
                ModelInput.from_frontend_dict(data["frontend"])
