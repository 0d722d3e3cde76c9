"""What a keyword-spotting model expects: frames, and one input made of them.

Two descriptions, one per stage (as tflite-micro keeps one config per stage):

* :class:`FrontendParams`: the frames, audio to one row of features per
  frame (rate, framing, FFT, mel, MFCC, PCEN). The native frontend is built
  from it alone.
* :class:`ModelInput`: one model input made of those frames: a clip of
  ``clip_duration_ms`` (zero-padded when shorter), its frames, optionally
  resized bilinearly to ``resize`` (frames, bins) like ``tf.image.resize``.

Both travel beside every exported model (its sidecar's ``"frontend"`` and
``"input"``) and are the only thing the device builds its features from, so
training and inference cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

FEATURE_KINDS = ("spectrogram", "log_mel", "mfcc", "pcen")
MEL_KINDS = ("log_mel", "mfcc", "pcen")
WINDOWS = ("hann",)

# Sane ranges, far beyond any real configuration, checked before anything is
# allocated (a sidecar is input: it must not make a Pi allocate gigabytes).
SAMPLE_RATE_RANGE_HZ = (1000, 192000)
MAX_FFT_LENGTH = 16384             # 1 s at 16 kHz; its FFT work memory is ~2 MB
MAX_FRAME_STEP_SAMPLES = 65536     # the native code holds 8 hops of samples
MAX_NUM_MEL_BINS = 512
MAX_CLIP_DURATION_MS = 60000
MAX_FEATURE_VALUES = 1 << 24       # frames x features of one clip (64 MB of float32)


@dataclass(frozen=True)
class FrontendParams:
    """Parameters of the audio frontend, frame by frame, with units in the names.

    The defaults are the course's keyword-spotting configuration: 16 kHz,
    640-sample (40 ms) frames every 320 samples (20 ms), FFT length 640,
    40 mel bins between 20 Hz and 4 kHz, 10 MFCCs. How long a model input is
    and whether it is resized is :class:`ModelInput`'s.

    Parameters
    ----------
    sample_rate_hz : int
        Rate of the audio the frontend consumes (after any resampling).
    frame_length_samples, frame_step_samples : int
        STFT frame length and hop, in samples at ``sample_rate_hz``.
    fft_length : int, optional
        FFT size, any integer from ``frame_length_samples`` to 16384 (not only
        powers of two; products of 2, 3 and 5 are the fastest, lengths with a
        large prime factor, 641 say, cost a few times more: see
        ``native/src/fft.h``); defaults to ``frame_length_samples``.
    window : str
        Analysis window; ``"hann"`` is the periodic Hann window of ``tf.signal``.
    feature_kind : {"spectrogram", "log_mel", "mfcc", "pcen"}
        ``spectrogram``: STFT magnitude; ``log_mel``: ``log(mel + log_offset)``;
        ``mfcc``: ``tf.signal.mfccs_from_log_mel_spectrograms`` truncated to
        ``num_mfccs``; ``pcen``: per-channel energy normalisation of the mel
        energies (below), ``num_mel_bins`` values per frame.
    num_mel_bins : int
        Mel filters (log_mel, mfcc, pcen).
    lower_edge_hz, upper_edge_hz : float
        Mel filterbank edges; ``upper_edge_hz`` at most Nyquist.
    num_mfccs : int
        MFCCs kept (mfcc only), at most ``num_mel_bins``.
    log_offset : float
        Added before the log, as in the course (``1e-6``).
    pcen_time_constant_ms, pcen_alpha, pcen_delta, pcen_power, pcen_epsilon : float
        PCEN (Wang et al. 2017), per mel channel, of the mel energies ``E``
        (the magnitude spectrum through the mel filters, as log_mel uses them
        before the log, for float audio with full scale 1)::

            M[t] = E[0] at t = 0, else (1 - s) M[t-1] + s E[t]
            pcen[t] = (E[t] / (pcen_epsilon + M[t]) ** pcen_alpha + pcen_delta) ** pcen_power
                      - pcen_delta ** pcen_power

        ``M`` is a low-pass of the energy with time constant
        ``pcen_time_constant_ms``: ``s = 1 - exp(-frame_step_ms /
        pcen_time_constant_ms)`` per frame (:attr:`pcen_smoothing`), so the
        same time constant holds at any hop; the default 395 ms gives
        s = 0.025 at a 10 ms hop, the paper's value (0.049 at 20 ms).
        ``pcen_alpha`` (0..1) is how much of the level the gain removes,
        ``pcen_delta`` (> 0) and ``pcen_power`` (0..1, the paper's r) the
        root compression, ``pcen_epsilon`` keeps the gain finite in silence.
        Defaults: 0.98, 2.0, 0.5, 1e-6 (the paper's). ``M`` starts at the
        first frame's energy (a warm start: no transient from zero); a batch
        clip starts it afresh at its own first frame, a stream at its start
        or :meth:`reset`, and then carries it on: a live window therefore
        differs from the batch features of the same second by the history,
        a difference that decays by a factor ``(1 - s)`` per frame.
    noise_reduction_time_constant_ms, noise_reduction_min_remaining : float
        PCEN only, off by default (time constant 0): the energy PCEN divides
        loses a slow estimate ``N`` of its channel's level first, as
        tflite-micro's microfrontend reduces noise before its PCAN::

            N[t] = E[0] at t = 0, else (1 - n) N[t-1] + n E[t]
            pcen[t] = (max(E[t] - N[t], noise_reduction_min_remaining * E[t])
                       / (pcen_epsilon + M[t]) ** pcen_alpha + pcen_delta) ** pcen_power
                      - pcen_delta ** pcen_power

        with ``n`` from the time constant as ``s`` from PCEN's
        (:attr:`noise_reduction_smoothing`) and ``M`` still the smoothed
        whole energy: steady noise falls toward ``pcen_delta``'s floor (0),
        onsets pass. ``noise_reduction_min_remaining`` (0..1, default 0.05,
        the microfrontend's) is the share of each energy always kept. ``N``
        starts and carries as ``M`` does.

    Ranges (checked at construction, so a sidecar cannot make the device
    allocate gigabytes): ``sample_rate_hz`` 1000 to 192000, ``fft_length`` at
    most 16384, ``frame_step_samples`` at most 65536, ``num_mel_bins`` at
    most 512; every number finite.
    """

    sample_rate_hz: int = 16000
    frame_length_samples: int = 640
    frame_step_samples: int = 320
    fft_length: Optional[int] = None
    window: str = "hann"
    feature_kind: str = "mfcc"
    num_mel_bins: int = 40
    lower_edge_hz: float = 20.0
    upper_edge_hz: float = 4000.0
    num_mfccs: int = 10
    log_offset: float = 1e-6
    pcen_time_constant_ms: float = 395.0
    pcen_alpha: float = 0.98
    pcen_delta: float = 2.0
    pcen_power: float = 0.5
    pcen_epsilon: float = 1e-6
    noise_reduction_time_constant_ms: float = 0.0
    noise_reduction_min_remaining: float = 0.05

    def __init__(self, **kwargs: Any) -> None:  # keyword-only, validated
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"unknown frontend parameter(s): {', '.join(unknown)}")
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, kwargs.get(field.name, field.default))
        self._normalise()
        self._validate()

    # -- construction helpers -------------------------------------------------
    def _normalise(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        for name in ("sample_rate_hz", "frame_length_samples", "frame_step_samples",
                     "num_mel_bins", "num_mfccs"):
            set_(name, _as_int(name, getattr(self, name)))
        set_("fft_length", self.frame_length_samples if self.fft_length is None
             else _as_int("fft_length", self.fft_length))
        for name in ("lower_edge_hz", "upper_edge_hz", "log_offset", "pcen_time_constant_ms", "pcen_alpha",
                     "pcen_delta", "pcen_power", "pcen_epsilon", "noise_reduction_time_constant_ms",
                     "noise_reduction_min_remaining"):
            set_(name, _as_float(name, getattr(self, name)))

    def _validate(self) -> None:
        def need(condition: bool, message: str) -> None:
            if not condition:
                raise ValueError(f"invalid frontend parameters: {message}")

        low_hz, high_hz = SAMPLE_RATE_RANGE_HZ
        need(low_hz <= self.sample_rate_hz <= high_hz,
             f"sample_rate_hz must be from {low_hz} to {high_hz}, got {self.sample_rate_hz}")
        need(self.frame_length_samples >= 2, f"frame_length_samples must be >= 2, got {self.frame_length_samples}")
        need(1 <= self.frame_step_samples <= MAX_FRAME_STEP_SAMPLES,
             f"frame_step_samples must be from 1 to {MAX_FRAME_STEP_SAMPLES}, got {self.frame_step_samples}")
        need(self.fft_length >= self.frame_length_samples,
             f"fft_length ({self.fft_length}) is shorter than frame_length_samples ({self.frame_length_samples})")
        need(self.fft_length <= MAX_FFT_LENGTH, f"fft_length must be at most {MAX_FFT_LENGTH}, got {self.fft_length}")
        need(self.window in WINDOWS, f"window must be one of {WINDOWS}, got {self.window!r}")
        need(self.feature_kind in FEATURE_KINDS, f"feature_kind must be one of {FEATURE_KINDS}, got {self.feature_kind!r}")
        need(self.log_offset > 0, f"log_offset must be positive, got {self.log_offset}")
        need(0 < self.pcen_time_constant_ms <= 1e6,
             f"pcen_time_constant_ms must be in (0, 1e6], got {self.pcen_time_constant_ms}")
        need(0 <= self.pcen_alpha <= 1, f"pcen_alpha must be in [0, 1], got {self.pcen_alpha}")
        need(1e-6 <= self.pcen_delta <= 1e3, f"pcen_delta must be in [1e-6, 1e3], got {self.pcen_delta}")
        need(0 < self.pcen_power <= 1, f"pcen_power must be in (0, 1], got {self.pcen_power}")
        need(1e-12 <= self.pcen_epsilon <= 1, f"pcen_epsilon must be in [1e-12, 1], got {self.pcen_epsilon}")
        need(0 <= self.noise_reduction_time_constant_ms <= 1e6,
             f"noise_reduction_time_constant_ms must be in [0, 1e6] (0: none), "
             f"got {self.noise_reduction_time_constant_ms}")
        need(0 <= self.noise_reduction_min_remaining <= 1,
             f"noise_reduction_min_remaining must be in [0, 1], got {self.noise_reduction_min_remaining}")
        need(self.noise_reduction_time_constant_ms == 0 or self.feature_kind == "pcen",
             f"noise reduction is a stage of PCEN; feature_kind is {self.feature_kind!r}")
        if self.feature_kind in MEL_KINDS:
            nyquist = self.sample_rate_hz / 2
            need(1 <= self.num_mel_bins <= MAX_NUM_MEL_BINS,
                 f"num_mel_bins must be from 1 to {MAX_NUM_MEL_BINS}, got {self.num_mel_bins}")
            need(0 <= self.lower_edge_hz < self.upper_edge_hz,
                 f"need 0 <= lower_edge_hz ({self.lower_edge_hz}) < upper_edge_hz ({self.upper_edge_hz})")
            need(self.upper_edge_hz <= nyquist,
                 f"upper_edge_hz ({self.upper_edge_hz}) is above Nyquist ({nyquist}) at {self.sample_rate_hz} Hz")
        if self.feature_kind == "mfcc":
            need(1 <= self.num_mfccs <= self.num_mel_bins,
                 f"num_mfccs ({self.num_mfccs}) must be between 1 and num_mel_bins ({self.num_mel_bins})")

    # -- derived sizes ----------------------------------------------------------
    @property
    def frame_length_ms(self) -> float:
        return 1000.0 * self.frame_length_samples / self.sample_rate_hz

    @property
    def frame_step_ms(self) -> float:
        return 1000.0 * self.frame_step_samples / self.sample_rate_hz

    @property
    def num_fft_bins(self) -> int:
        """Bins of the one-sided spectrum, ``fft_length // 2 + 1``."""
        return self.fft_length // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Frames ``tf.signal.stft`` (no padding) yields for ``num_samples``."""
        if num_samples < self.frame_length_samples:
            return 0
        return 1 + (num_samples - self.frame_length_samples) // self.frame_step_samples

    @property
    def num_features(self) -> int:
        """Values per frame."""
        if self.feature_kind == "spectrogram":
            return self.num_fft_bins
        if self.feature_kind in ("log_mel", "pcen"):
            return self.num_mel_bins
        return self.num_mfccs

    @property
    def pcen_smoothing(self) -> float:
        """PCEN's smoothing coefficient per frame, ``1 - exp(-frame_step_ms / pcen_time_constant_ms)``."""
        return self._per_frame(self.pcen_time_constant_ms)

    @property
    def noise_reduction_smoothing(self) -> float:
        """The noise estimate's coefficient per frame (0: no noise reduction), as :attr:`pcen_smoothing`."""
        return self._per_frame(self.noise_reduction_time_constant_ms) if self.noise_reduction_time_constant_ms else 0.0

    def _per_frame(self, time_constant_ms: float) -> float:
        """A first-order smoother's coefficient per frame for ``time_constant_ms``, the same at any hop."""
        return -math.expm1(-self.frame_step_ms / time_constant_ms)

    # -- serialisation -----------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FrontendParams":
        if not isinstance(data, Mapping):
            raise ValueError(f"frontend parameters must be a mapping, got {type(data).__name__}")
        return cls(**dict(data))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FrontendParams":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> "FrontendParams":
        return FrontendParams(**{**self.to_dict(), **changes})


@dataclass(frozen=True)
class ModelInput:
    """One model input: a clip of audio through a frontend, its frames optionally resized.

    Parameters
    ----------
    frontend : FrontendParams, optional
        The frames (default: ``FrontendParams()``, the course's MFCCs).
    clip_duration_ms : int
        Length of one model input, 1 to 60000 ms; shorter clips are
        zero-padded to it, and a live window spans it.
    resize : (int, int), optional
        Spectrogram only: the clip's (frames, bins) resized bilinearly to this
        shape, like ``tf.image.resize`` (the course's 32x32 models).

    At most 2**24 feature values (frames x features) per clip, before and
    after the resize; the clip at least one frame long.

    Examples
    --------
    >>> ModelInput().feature_shape
    (49, 10)
    >>> ModelInput(frontend=FrontendParams(feature_kind="spectrogram"), resize=(32, 32)).frame_shape
    (49, 321)
    """

    frontend: FrontendParams
    clip_duration_ms: int = 1000
    resize: Optional[Tuple[int, int]] = None

    def __init__(self, *, frontend: Optional[FrontendParams] = None, clip_duration_ms: int = 1000,
                 resize: Optional[Tuple[int, int]] = None) -> None:
        if frontend is None:
            frontend = FrontendParams()
        if not isinstance(frontend, FrontendParams):
            raise ValueError(f"frontend must be a FrontendParams, got {type(frontend).__name__}")
        object.__setattr__(self, "frontend", frontend)
        object.__setattr__(self, "clip_duration_ms", _as_int("clip_duration_ms", clip_duration_ms, "model input"))
        object.__setattr__(self, "resize", checked_resize(resize))
        self._validate()

    def _validate(self) -> None:
        def need(condition: bool, message: str) -> None:
            if not condition:
                raise ValueError(f"invalid model input: {message}")

        need(0 < self.clip_duration_ms <= MAX_CLIP_DURATION_MS,
             f"clip_duration_ms must be from 1 to {MAX_CLIP_DURATION_MS}, got {self.clip_duration_ms}")
        need(self.clip_length_samples >= self.frontend.frame_length_samples,
             f"a {self.clip_duration_ms} ms clip ({self.clip_length_samples} samples) is shorter than one frame")
        if self.resize is not None:
            need(self.frontend.feature_kind == "spectrogram", "resize applies to feature_kind='spectrogram' only")
        frames, features = self.frame_shape
        need(frames * features <= MAX_FEATURE_VALUES,
             f"one clip would have {frames} x {features} feature values, more than {MAX_FEATURE_VALUES}")

    @property
    def clip_length_samples(self) -> int:
        """Samples in one model input (``clip_duration_ms`` at the frontend's rate)."""
        return self.frontend.sample_rate_hz * self.clip_duration_ms // 1000

    @property
    def frame_shape(self) -> Tuple[int, int]:
        """(frames, features) of one clip before any resize: a live window's rows and columns."""
        return (self.frontend.num_frames(self.clip_length_samples), self.frontend.num_features)

    @property
    def feature_shape(self) -> Tuple[int, int]:
        """(frames, features) of one model input, after any resize."""
        return self.resize if self.resize is not None else self.frame_shape

    def to_dict(self) -> dict:
        """``{"clip_duration_ms": ..., "resize": [rows, cols] or None}`` (the sidecar's ``"input"``;
        the frontend is written beside it)."""
        return {"clip_duration_ms": self.clip_duration_ms,
                "resize": None if self.resize is None else list(self.resize)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, frontend: FrontendParams) -> "ModelInput":
        """The inverse of :meth:`to_dict`; unknown keys refused."""
        if not isinstance(data, Mapping):
            raise ValueError(f"model input must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - {"clip_duration_ms", "resize"})
        if unknown:
            raise ValueError(f"unknown model input key(s): {', '.join(unknown)}")
        return cls(frontend=frontend, **dict(data))

    @classmethod
    def from_frontend_dict(cls, data: Mapping[str, Any]) -> "ModelInput":
        """From one dict of frontend parameters that may also hold ``clip_duration_ms`` and
        ``resize`` (the layout of version-1 sidecars, before the two stages were separate)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"frontend parameters must be a mapping, got {type(data).__name__}")
        frame_keys = {key: value for key, value in data.items() if key not in ("clip_duration_ms", "resize")}
        input_keys = {key: data[key] for key in ("clip_duration_ms", "resize") if key in data}
        return cls(frontend=FrontendParams.from_dict(frame_keys), **input_keys)

    def replace(self, **changes: Any) -> "ModelInput":
        """A copy with ``changes`` (``frontend``, ``clip_duration_ms``, ``resize``), checked again."""
        values = {"frontend": self.frontend, "clip_duration_ms": self.clip_duration_ms, "resize": self.resize}
        return ModelInput(**{**values, **changes})


def checked_resize(resize: Any) -> Optional[Tuple[int, int]]:
    """``resize`` as ``(rows, cols)`` of positive integers with at most 2**24 values, or None.

    Raises ValueError naming the problem (the shape check shared by
    :class:`ModelInput` and ``native.feature_stream``).
    """
    if resize is None:
        return None
    try:
        rows, cols = resize
    except (TypeError, ValueError):
        raise ValueError(f"invalid model input: resize must be (frames, bins), got {resize!r}") from None
    rows, cols = _as_int("resize[0]", rows, "model input"), _as_int("resize[1]", cols, "model input")
    if rows < 1 or cols < 1 or rows * cols > MAX_FEATURE_VALUES:
        raise ValueError(f"invalid model input: resize must be positive with at most {MAX_FEATURE_VALUES} "
                         f"values, got {(rows, cols)}")
    return (rows, cols)


def _as_int(name: str, value: Any, what: str = "frontend parameters") -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value)) or int(value) != value):
        raise ValueError(f"invalid {what}: {name} must be an integer, got {value!r}")
    return int(value)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"invalid frontend parameters: {name} must be a number, got {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"invalid frontend parameters: {name} must be finite, got {value!r}")
    return value
