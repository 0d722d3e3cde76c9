"""Frontend parameters: the one description of the features a model expects.

A :class:`FrontendParams` travels beside every exported model (in its sidecar)
and is the only thing the device uses to build its frontend, so training and
inference cannot drift apart.
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
    """Parameters of the audio frontend, with units in the names.

    The defaults are the course's keyword-spotting configuration: 16 kHz,
    640-sample (40 ms) frames every 320 samples (20 ms), FFT length 640,
    40 mel bins between 20 Hz and 4 kHz, 10 MFCCs, on 1 s clips.

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
    resize : (int, int), optional
        Spectrogram only: bilinear resize to (frames, bins) like
        ``tf.image.resize``.
    clip_duration_ms : int
        Length of one model input; shorter clips are zero-padded to it.
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

    Ranges (checked at construction, so a sidecar cannot make the device
    allocate gigabytes): ``sample_rate_hz`` 1000 to 192000, ``fft_length`` at
    most 16384, ``frame_step_samples`` at most 65536, ``num_mel_bins`` at most 512, ``clip_duration_ms`` at most
    60000, at most 2**24 feature values (frames x features) per clip; every
    number finite.
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
    resize: Optional[Tuple[int, int]] = None
    clip_duration_ms: int = 1000
    pcen_time_constant_ms: float = 395.0
    pcen_alpha: float = 0.98
    pcen_delta: float = 2.0
    pcen_power: float = 0.5
    pcen_epsilon: float = 1e-6

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
                     "num_mel_bins", "num_mfccs", "clip_duration_ms"):
            set_(name, _as_int(name, getattr(self, name)))
        set_("fft_length", self.frame_length_samples if self.fft_length is None
             else _as_int("fft_length", self.fft_length))
        for name in ("lower_edge_hz", "upper_edge_hz", "log_offset", "pcen_time_constant_ms", "pcen_alpha",
                     "pcen_delta", "pcen_power", "pcen_epsilon"):
            set_(name, _as_float(name, getattr(self, name)))
        if self.resize is not None:
            try:
                rows, cols = self.resize
            except (TypeError, ValueError):
                raise ValueError(f"resize must be (frames, bins), got {self.resize!r}") from None
            set_("resize", (_as_int("resize[0]", rows), _as_int("resize[1]", cols)))

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
        need(0 < self.clip_duration_ms <= MAX_CLIP_DURATION_MS,
             f"clip_duration_ms must be from 1 to {MAX_CLIP_DURATION_MS}, got {self.clip_duration_ms}")
        need(self.clip_length_samples >= self.frame_length_samples,
             f"a {self.clip_duration_ms} ms clip ({self.clip_length_samples} samples) is shorter than one frame")
        need(self.log_offset > 0, f"log_offset must be positive, got {self.log_offset}")
        need(0 < self.pcen_time_constant_ms <= 1e6,
             f"pcen_time_constant_ms must be in (0, 1e6], got {self.pcen_time_constant_ms}")
        need(0 <= self.pcen_alpha <= 1, f"pcen_alpha must be in [0, 1], got {self.pcen_alpha}")
        need(1e-6 <= self.pcen_delta <= 1e3, f"pcen_delta must be in [1e-6, 1e3], got {self.pcen_delta}")
        need(0 < self.pcen_power <= 1, f"pcen_power must be in (0, 1], got {self.pcen_power}")
        need(1e-12 <= self.pcen_epsilon <= 1, f"pcen_epsilon must be in [1e-12, 1], got {self.pcen_epsilon}")
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
        if self.resize is not None:
            need(self.feature_kind == "spectrogram", "resize applies to feature_kind='spectrogram' only")
            need(self.resize[0] >= 1 and self.resize[1] >= 1, f"resize must be positive, got {self.resize}")
        frames, features = self.num_frames(self.clip_length_samples), self.num_features
        need(frames * features <= MAX_FEATURE_VALUES and self.feature_shape[0] * self.feature_shape[1] <= MAX_FEATURE_VALUES,
             f"one clip would have {frames} x {features} feature values"
             + (f" (resized to {self.resize[0]} x {self.resize[1]})" if self.resize is not None else "")
             + f", more than {MAX_FEATURE_VALUES}")

    # -- derived sizes ----------------------------------------------------------
    @property
    def clip_length_samples(self) -> int:
        """Samples in one model input (``clip_duration_ms`` at ``sample_rate_hz``)."""
        return self.sample_rate_hz * self.clip_duration_ms // 1000

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
        """Values per frame before any resize."""
        if self.feature_kind == "spectrogram":
            return self.num_fft_bins
        if self.feature_kind in ("log_mel", "pcen"):
            return self.num_mel_bins
        return self.num_mfccs

    @property
    def pcen_smoothing(self) -> float:
        """PCEN's smoothing coefficient per frame, ``1 - exp(-frame_step_ms / pcen_time_constant_ms)``."""
        return -math.expm1(-self.frame_step_ms / self.pcen_time_constant_ms)

    @property
    def feature_shape(self) -> Tuple[int, int]:
        """(frames, features) of one clip, after any resize."""
        if self.resize is not None:
            return self.resize
        return (self.num_frames(self.clip_length_samples), self.num_features)

    # -- serialisation -----------------------------------------------------------
    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["resize"] = None if self.resize is None else list(self.resize)
        return out

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


def _as_int(name: str, value: Any) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value)) or int(value) != value):
        raise ValueError(f"invalid frontend parameters: {name} must be an integer, got {value!r}")
    return int(value)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"invalid frontend parameters: {name} must be a number, got {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"invalid frontend parameters: {name} must be finite, got {value!r}")
    return value
