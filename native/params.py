"""Frontend parameters: the one description of the features a model expects.

A :class:`FrontendParams` travels beside every exported model (in its sidecar)
and is the only thing the device uses to build its frontend, so training and
inference cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

FEATURE_KINDS = ("spectrogram", "log_mel", "mfcc")
WINDOWS = ("hann",)


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
        FFT size, any integer >= ``frame_length_samples`` (not only powers of
        two); defaults to ``frame_length_samples``.
    window : str
        Analysis window; ``"hann"`` is the periodic Hann window of ``tf.signal``.
    feature_kind : {"spectrogram", "log_mel", "mfcc"}
        ``spectrogram``: STFT magnitude; ``log_mel``: ``log(mel + log_offset)``;
        ``mfcc``: ``tf.signal.mfccs_from_log_mel_spectrograms`` truncated to
        ``num_mfccs``.
    num_mel_bins : int
        Mel filters (log_mel, mfcc).
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
        for name in ("lower_edge_hz", "upper_edge_hz", "log_offset"):
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

        need(self.sample_rate_hz > 0, f"sample_rate_hz must be positive, got {self.sample_rate_hz}")
        need(self.frame_length_samples >= 2, f"frame_length_samples must be >= 2, got {self.frame_length_samples}")
        need(self.frame_step_samples >= 1, f"frame_step_samples must be >= 1, got {self.frame_step_samples}")
        need(self.fft_length >= self.frame_length_samples,
             f"fft_length ({self.fft_length}) is shorter than frame_length_samples ({self.frame_length_samples})")
        need(self.window in WINDOWS, f"window must be one of {WINDOWS}, got {self.window!r}")
        need(self.feature_kind in FEATURE_KINDS, f"feature_kind must be one of {FEATURE_KINDS}, got {self.feature_kind!r}")
        need(self.clip_duration_ms > 0, f"clip_duration_ms must be positive, got {self.clip_duration_ms}")
        need(self.clip_length_samples >= self.frame_length_samples,
             f"a {self.clip_duration_ms} ms clip ({self.clip_length_samples} samples) is shorter than one frame")
        need(self.log_offset > 0, f"log_offset must be positive, got {self.log_offset}")
        if self.feature_kind in ("log_mel", "mfcc"):
            nyquist = self.sample_rate_hz / 2
            need(self.num_mel_bins >= 1, f"num_mel_bins must be >= 1, got {self.num_mel_bins}")
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
        if self.feature_kind == "log_mel":
            return self.num_mel_bins
        return self.num_mfccs

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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"invalid frontend parameters: {name} must be an integer, got {value!r}")
    return int(value)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"invalid frontend parameters: {name} must be a number, got {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"invalid frontend parameters: {name} must be finite, got {value!r}")
    return value
