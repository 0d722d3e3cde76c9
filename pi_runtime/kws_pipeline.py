"""Streaming keyword spotting: audio chunks in, detections out.

The live path, shared by ``pi_runtime.listen``, the tests and the benchmarks::

    audio chunk (any rate, int16 or float32)
      -> native FeatureStream, one call per chunk:
           Resampler (streaming, to the model's rate)
           -> StreamingFrontend (only the frames that became ready)
           -> ring of the last clip's worth of feature rows
      -> model, every hop (e.g. 100 ms), the window written into its input

      -> DetectionPolicy: energy gate, posterior smoothing, threshold, refractory,
         and for open-set models: a keyword must beat _unknown_ and _silence_
      -> Detection(label, score, time_s)

Decisions are tied to frames, not to how the audio happens to be chunked: the
same audio gives the same decisions whether it arrives in one piece or one
sample at a time. Times are seconds of the input stream at the end of the
one-second window the model saw. At the end of a file, :meth:`KeywordSpotter.flush`
decides the last window (the resampler's tail included, a window ending at the
last frame when the input ends between two hops).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from native.feature_stream import FeatureStream, energy as _energy
from native.params import FrontendParams, ModelInput
from native.posteriors import PosteriorSmoother, softmax
from pi_runtime.labels import NON_KEYWORD_LABELS, keyword_labels
from pi_runtime.sidecar import MAX_SMOOTHING_WINDOWS, MAX_TEMPERATURE, MIN_TEMPERATURE, KwsSpec, detector_settings
from pi_runtime.wav import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ

__all__ = [
    "DetectorConfig",
    "Detection",
    "Decision",
    "DetectionPolicy",
    "KeywordSpotter",
    "as_float_audio",
    "frames_per_hop",
    "to_probabilities",
    "MAX_SMOOTHING_WINDOWS",
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
]

# Audio rates accepted: those the WAV reader accepts, anything a sound card or
# file plausibly has; the bounds catch a sample count or a typo passed as a rate.
MIN_INPUT_RATE_HZ, MAX_INPUT_RATE_HZ = MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ
# The time between model runs unless told: 5 frames of 20 ms (the nearest whole frames for other frontends).
DEFAULT_HOP_MS = 100.0
# Smoothing is bounded by pi_runtime.sidecar.MAX_SMOOTHING_WINDOWS (100: ten seconds
# of 100 ms windows), so that a typo (10**9) is an error, not a numpy allocation.
_FLOAT32 = np.dtype(np.float32)


@dataclass(frozen=True)
class DetectorConfig:
    """How per-window model outputs become detections.

    Parameters
    ----------
    hop_ms : float
        Time between two model runs: a whole number of frontend frames (100 ms
        = 5 frames of 20 ms), at most one model window; :func:`frames_per_hop`
        checks it against a model (the default rounds to whole frames).
    threshold : float
        Smoothed posterior (0..1) a keyword needs to be reported.
    smoothing_windows : int
        Posteriors averaged over this many consecutive windows (1 = none, at
        most ``MAX_SMOOTHING_WINDOWS``).
    refractory_ms : float
        After a detection, no other detection for this long. Besides, the
        label that fired cannot fire again until its smoothed score has fallen
        below the threshold: a word that stays in the sliding window for a
        second is reported once.
    min_level_dbfs : float
        Energy gate: windows whose RMS level (dB relative to full scale) is
        below this are not sent to the model and count as "no keyword". The
        8-word models have no silence class, so without the gate silence would
        be forced into one of the words. ``-inf`` disables the gate. The
        default lets through the quiet words the models are built to hear: a
        validation clip brought to a peak of -40 dBFS (the level of the
        robustness bar, ``train.kws.robustness``) has a 1 s RMS of -58.5 dBFS at
        the median and -64.1 at the 1st percentile, so the -55 dBFS of before
        shut out most of them. On the validation stream the 8-word models
        detected 5.0-5.6 points more of the keywords with -65 than with -55, for
        7-10 % more false alarms (go/stop: 3.0 points, 11 %). It still stops
        digital silence and a noise floor under -65 dBFS RMS.
    temperature : float
        Each window's posteriors are sharpened (below 1) or flattened (above
        1) before the mean, as a softmax at this temperature would be (raised
        to ``1 / temperature`` and renormalised), from ``MIN_TEMPERATURE`` to
        ``MAX_TEMPERATURE``; 1 (default) takes them as the model gives them. The
        open-set models hedge between keywords (a clean validation keyword's
        own word gets about 0.7 of the mass), while babble spreads its mass
        over several words: below 1 the mean counts the windows the model is
        sure of more, and the calibration picks the temperature with the
        threshold (``python -m train.kws.calibrate``).

    A model's sidecar may carry calibrated values (its ``"detector"`` section,
    written by ``python -m train.kws.calibrate``); :meth:`from_sidecar` reads them.
    """

    hop_ms: float = DEFAULT_HOP_MS
    threshold: float = 0.8
    smoothing_windows: int = 3
    refractory_ms: float = 1000.0
    min_level_dbfs: float = -65.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not (self.hop_ms > 0 and math.isfinite(self.hop_ms)):
            raise ValueError(f"hop_ms must be a positive number, got {self.hop_ms!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        if (int(self.smoothing_windows) != self.smoothing_windows
                or not 1 <= self.smoothing_windows <= MAX_SMOOTHING_WINDOWS):
            raise ValueError(f"smoothing_windows must be an integer from 1 to {MAX_SMOOTHING_WINDOWS}, "
                             f"got {self.smoothing_windows!r}")
        if not (self.refractory_ms >= 0 and math.isfinite(self.refractory_ms)):
            raise ValueError(f"refractory_ms must be >= 0, got {self.refractory_ms!r}")
        if math.isnan(self.min_level_dbfs):
            raise ValueError("min_level_dbfs must be a number (use -inf to disable the gate)")
        if not MIN_TEMPERATURE <= self.temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be a number from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}, "
                             f"got {self.temperature!r}")

    def replace(self, **changes) -> "DetectorConfig":
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        return DetectorConfig(**{**asdict(self), **changes})

    def summary(self) -> str:
        """The operating point in a few words: "thr 0.9, smooth 5, T 0.35, gate -60 dBFS" (T when not 1)."""
        parts = [f"thr {self.threshold:g}", f"smooth {self.smoothing_windows}"]
        if self.temperature != 1.0:
            parts.append(f"T {self.temperature:g}")
        parts.append(f"gate {self.min_level_dbfs:g} dBFS" if math.isfinite(self.min_level_dbfs) else "no gate")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        """The settings, as the sidecar's ``"detector"`` section holds them."""
        return asdict(self)

    @classmethod
    def from_sidecar(cls, sidecar: Union[dict, KwsSpec, None], *, keywords: Optional[Sequence[str]] = None,
                     **overrides) -> "DetectorConfig":
        """Settings from ``overrides`` (``None`` values ignored), then the sidecar's
        ``"detector"`` section (a sidecar dict or its :class:`KwsSpec`; with ``keywords``, a subset
        listened for, that subset's calibration when the sidecar has one), then the defaults of this class."""
        settings = (sidecar.detector_settings(keywords) if isinstance(sidecar, KwsSpec)
                    else detector_settings(sidecar, keywords))
        values = {key: value for key, value in settings.items() if key in cls.__dataclass_fields__}
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass(frozen=True)
class Detection:
    """A keyword found in the stream.

    ``time_s`` is the end of the one-second window that triggered it, in
    seconds of the input stream; the word lies within the window before it.
    """

    label: str
    score: float
    time_s: float
    window_start_s: float

    def to_dict(self) -> dict:
        return {key: (round(value, 4) if isinstance(value, float) else value)
                for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Decision:
    """One window of the stream, as the policy saw it.

    ``probabilities`` is ``None`` when the energy gate kept the window from the
    model; otherwise float32[num_labels] summing to 1.
    """

    time_s: float
    level_dbfs: float
    probabilities: Optional[np.ndarray]
    detection: Optional[Detection] = None


def as_float_audio(chunk) -> np.ndarray:
    """Return ``chunk`` as contiguous float32 in [-1, 1].

    Accepts 1-D int16 (scaled by 1/32768) or float arrays, and 2-D arrays with
    one channel (as audio callbacks deliver them). Raises ``ValueError`` for
    anything else. NaN and infinities are checked by :meth:`KeywordSpotter.push`
    (from the energy it computes anyway).
    """
    if type(chunk) is np.ndarray and chunk.dtype is _FLOAT32 and chunk.ndim == 1 and chunk.flags.c_contiguous:
        return chunk  # the live path's usual chunk: nothing to do
    audio = np.asarray(chunk)
    if audio.ndim == 2 and audio.shape[1] == 1:
        audio = audio[:, 0]
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono: a 1-D array or (samples, 1), got shape {audio.shape}")
    if audio.dtype == np.int16:
        return audio.astype(np.float32) * np.float32(1.0 / 32768.0)
    if audio.dtype.kind != "f":
        raise ValueError(f"audio must be int16 or floating point, got dtype {audio.dtype}")
    return np.ascontiguousarray(audio, dtype=np.float32)


def to_probabilities(outputs: np.ndarray, *, outputs_are_logits: bool) -> np.ndarray:
    """Turn one model output vector into probabilities, float32[num_labels].

    Parameters
    ----------
    outputs : array, shape (num_labels,) or (1, num_labels)
    outputs_are_logits : bool
        What the model outputs (its sidecar's ``"output"``): logits go through a
        softmax; probabilities are clipped to [0, 1], so a score is never above 1
        even from a model that outputs something else than its sidecar says.
    """
    if outputs_are_logits:
        return softmax(outputs)  # numpy's float32 arithmetic, natively: no overflow, the same bits
    return np.clip(np.asarray(outputs, dtype=np.float32).reshape(-1), 0.0, 1.0)


class DetectionPolicy:
    """Energy gate, posterior smoothing, threshold, refractory period, and only keywords fire.

    A window's label is the one with the highest smoothed posterior. It fires
    when it is a keyword, its smoothed posterior reaches the threshold, and,
    for an open-set model, it beats the smoothed ``_unknown_`` and
    ``_silence_`` posteriors; a non-keyword label (those two, or a word the
    sidecar does not list among its ``"keywords"``) never fires. A model whose
    labels are all keywords (the 8-word models) is decided as before the
    open-set labels existed.

    Pure Python over per-window probabilities, so stored posteriors can be
    replayed with other settings (the streaming benchmark and the calibration do).

    Parameters
    ----------
    labels : the model's output labels
    config : DetectorConfig
    window_duration_s : float
        Length of the window a decision saw (for :attr:`Detection.window_start_s`).
    keywords : sequence of str, optional
        The labels that may fire; default: every label but ``_silence_`` and ``_unknown_``.
    """

    def __init__(self, labels: Sequence[str], config: DetectorConfig, *, window_duration_s: float,
                 keywords: Optional[Sequence[str]] = None) -> None:
        self.labels = list(labels)
        self.config = config
        self.window_duration_s = float(window_duration_s)
        self.keywords = keyword_labels(self.labels, keywords)
        self.can_fire = tuple(label in self.keywords for label in self.labels)
        self.rival_indices = tuple(k for k, label in enumerate(self.labels) if label in NON_KEYWORD_LABELS)
        num_labels = len(self.labels)
        # Running float64 sum over the last smoothing_windows windows, kept natively
        # (a few numpy calls on 8 values cost more than the arithmetic).
        self._smoother = PosteriorSmoother(config.smoothing_windows, num_labels, 1.0 / config.temperature)
        self._smoothed = self._smoother.mean
        self._quiet = np.zeros(num_labels, dtype=np.float32)
        self._refractory_until_s = -math.inf
        self._last_fired: Optional[int] = None  # label index that must fall below threshold first

    def is_gated(self, level_dbfs: float) -> bool:
        return level_dbfs < self.config.min_level_dbfs

    def smooth(self, probabilities: Optional[np.ndarray]) -> int:
        """Add one window's probabilities (``None``: gated, counted as zeros) to the running mean;
        return the index of the best smoothed label (the mean itself: :attr:`smoothed`)."""
        try:
            return self._smoother.push(self._quiet if probabilities is None else probabilities)
        except ValueError as error:  # nothing was added
            if np.size(probabilities) == len(self.labels):
                raise ValueError(f"the model gave {error}") from None  # NaN or infinity
            raise ValueError(f"model gave {np.size(probabilities)} outputs for {len(self.labels)} labels") from None

    @property
    def smoothed(self) -> np.ndarray:
        """float64[labels]: the mean of the windows held (kept in place: copy it to keep it)."""
        return self._smoothed

    def update(self, probabilities: Optional[np.ndarray], time_s: float) -> Optional[Detection]:
        """Take one window's probabilities (``None``: gated) and return a detection or ``None``."""
        best = self.smooth(probabilities)
        smoothed, threshold = self._smoothed, self.config.threshold  # mean of the windows held
        if self._last_fired is not None and smoothed[self._last_fired] < threshold:
            self._last_fired = None
        if probabilities is None or not self.can_fire[best]:
            return None
        score = float(smoothed[best])
        if score < threshold or time_s < self._refractory_until_s or best == self._last_fired:
            return None
        if any(smoothed[rival] >= score for rival in self.rival_indices):  # a tie is no win
            return None
        self._refractory_until_s = time_s + self.config.refractory_ms / 1000.0
        self._last_fired = best
        return Detection(label=self.labels[best], score=score, time_s=float(time_s),
                         window_start_s=float(time_s) - self.window_duration_s)

    def reset(self) -> None:
        self._smoother.clear()
        self._refractory_until_s = -math.inf
        self._last_fired = None


def _checked_input_rate(input_rate_hz) -> int:
    if int(input_rate_hz) != input_rate_hz or not MIN_INPUT_RATE_HZ <= input_rate_hz <= MAX_INPUT_RATE_HZ:
        raise ValueError(f"input_rate_hz must be an integer between {MIN_INPUT_RATE_HZ} and "
                         f"{MAX_INPUT_RATE_HZ} Hz, got {input_rate_hz!r}")
    return int(input_rate_hz)


def frames_per_hop(hop_ms: float, model_input: ModelInput) -> int:
    """Frontend frames in ``hop_ms``; ValueError unless it is a whole number of them and at most one window.

    A hop between frames cannot be run (the model sees whole frames), and one
    longer than the model's window would leave audio no window hears. The
    default, ``DEFAULT_HOP_MS``, is the exception: it means "about 100 ms" and
    becomes the nearest whole number of frames (96 ms with 16 ms frames).
    """
    step_ms = model_input.frontend.frame_step_ms
    frames = hop_ms / step_ms
    whole = max(1, int(round(frames)))
    if hop_ms == DEFAULT_HOP_MS and whole * step_ms <= model_input.clip_duration_ms:
        return whole
    if abs(frames - whole) > 1e-6 * frames:
        nearest = [f"{n * step_ms:g}" for n in (int(frames), int(frames) + 1) if n >= 1]
        raise ValueError(f"hop_ms {hop_ms:g} is not a whole number of the frontend's {step_ms:g} ms frames "
                         f"(e.g. {' or '.join(nearest)})")
    if hop_ms > model_input.clip_duration_ms:
        raise ValueError(f"hop_ms {hop_ms:g} is longer than the model's {model_input.clip_duration_ms} ms window: "
                         "audio between two windows would never be heard")
    return whole


class KeywordSpotter:
    """The whole live pipeline around one loaded model.

    Parameters
    ----------
    model : pi_runtime.model.LoadedModel
        A keyword-spotting model with frontend parameters and labels.
    input_rate_hz : int
        Rate of the audio given to :meth:`push`.
    config : DetectorConfig
    on_decision : callable, optional
        Called with every :class:`Decision` (tests, benchmarks, status lines).
    keywords : sequence of str, optional
        Listen for these of the model's keywords only (e.g. go and stop of an
        eight-word model): the others never fire, and a window where one of
        them leads fires nothing, as if it were ``_unknown_``. Default: all of
        the sidecar's keywords.

    Examples
    --------
    >>> spotter = KeywordSpotter(load_model("models/kws/kws_a.tflite"), input_rate_hz=48000)
    >>> for detection in spotter.push(chunk):        # chunk: int16 or float32 samples
    ...     print(detection.time_s, detection.label, detection.score)
    >>> spotter.flush()                               # end of a file: its last window decided
    """

    def __init__(self, model, *, input_rate_hz: int, config: DetectorConfig = DetectorConfig(),
                 on_decision: Optional[Callable[[Decision], None]] = None,
                 keywords: Optional[Sequence[str]] = None) -> None:
        model_input: Optional[ModelInput] = model.model_input
        if model_input is None:
            raise ValueError("the model has no frontend parameters (no sidecar and none given)")
        labels = model.labels
        if not labels:
            raise ValueError("the model has no labels (keyword spotting needs the sidecar's 'labels')")
        if model.output_kind is None:
            raise ValueError(f"{model.path.name}: neither its sidecar nor its graph tells whether it outputs "
                             "logits or probabilities; add \"output\": {\"kind\": ...} to the sidecar")
        params = model_input.frontend
        self.model = model
        self.model_input = model_input
        self.params: FrontendParams = params
        self.labels = list(labels)
        self.config = config
        self.on_decision = on_decision
        self.input_rate_hz = _checked_input_rate(input_rate_hz)

        self.window_shape = model_input.feature_shape  # what the model takes: the frames, or resized
        self.hop_frames = frames_per_hop(config.hop_ms, model_input)
        self.hop_s = self.hop_frames * params.frame_step_samples / params.sample_rate_hz
        # Each window (resized in C when the model input is) is written straight
        # into the model's input buffer: no copy per hop.
        self._model_input = np.zeros(getattr(model, "input_shape", self.window_shape), np.float32)
        if self._model_input.size != self.window_shape[0] * self.window_shape[1]:
            raise ValueError(f"the model takes input {self._model_input.shape}, the frontend gives "
                             f"{self.window_shape}")
        self._window = self._model_input.reshape(self.window_shape)
        self.features = FeatureStream(params, self.input_rate_hz, model_input.frame_shape[0], self.hop_frames,
                                      window=self._window, resize=model_input.resize,
                                      level_window_samples=model_input.clip_length_samples * self.input_rate_hz
                                      // params.sample_rate_hz)
        self._push_audio = self.features.push_float32          # per-hop calls, bound once
        self._next_window = self.features.next_window
        self._level_dbfs = self.features.level_dbfs  # of the last second of input, kept natively
        # Push audio in pieces of at most one hop so the level meter follows the stream closely.
        self._max_piece_samples = max(1, int(round(self.hop_s * self.input_rate_hz)))
        spec = getattr(model, "spec", None)
        if spec is not None:
            keywords = spec.listened_keywords(keywords)
        self.policy = DetectionPolicy(self.labels, config, window_duration_s=model_input.clip_duration_ms / 1000.0,
                                      keywords=keywords)
        self.keywords = self.policy.keywords
        self.output_kind: str = model.output_kind  # decided once: the sidecar's, checked against the graph
        self._outputs_are_logits = self.output_kind == "logits"
        self.samples_in = 0
        self.decisions = 0
        self.invocations = 0
        self.last_probabilities: Optional[np.ndarray] = None

    # -- streaming ------------------------------------------------------------------
    def push(self, chunk) -> List[Detection]:
        """Push audio at ``input_rate_hz``; return the detections it completed (often none)."""
        audio = as_float_audio(chunk)
        detections: List[Detection] = []
        if audio.size <= self._max_piece_samples:  # the usual case: one hop or less
            self._push_piece(audio, detections)
        else:
            if not math.isfinite(_energy(audio)):  # checked before any state changes
                raise ValueError("audio contains NaN or infinite samples")
            for start in range(0, audio.size, self._max_piece_samples):
                self._push_piece(audio[start:start + self._max_piece_samples], detections)
        return detections

    def _push_piece(self, piece: np.ndarray, detections: List[Detection]) -> None:
        # One native call: NaN check, level, resampling, new frames (raises before any change).
        self._push_audio(piece)
        self.samples_in += piece.size
        self._decide_ready_windows(detections)

    def _decide_ready_windows(self, detections: List[Detection]) -> None:
        # Frames go into the window up to each decision point, so a decision sees
        # exactly the window ending at its frame, however the audio was chunked.
        while True:
            last_frame = self._next_window()
            if last_frame < 0:
                return
            detection = self._decide(self.features.frame_end_time_s(last_frame))
            if detection is not None:
                detections.append(detection)

    def flush(self) -> List[Detection]:
        """End the stream: decide the windows that still hold input; returns their detections.

        The resampler's last few milliseconds go through the frontend
        (:meth:`FeatureStream.flush`), and input that ends between two hops gets
        one more window, ending at its last frame: a file's last window is
        always decided. Input shorter than a window is first padded with zeros
        to one clip, as training pads short clips. Pushing again raises
        ``ValueError`` until :meth:`reset`.
        """
        detections: List[Detection] = []
        if self.features.flushed:
            return detections
        clip_input_samples = -(-self.model_input.clip_length_samples * self.input_rate_hz // self.params.sample_rate_hz)
        if 0 < self.samples_in < clip_input_samples:  # padding, not input: samples_in stays as it is
            input_samples = self.samples_in
            detections += self.push(np.zeros(clip_input_samples - self.samples_in, np.float32))
            self.samples_in = input_samples
        self.features.flush(last_window=True)
        self._decide_ready_windows(detections)
        return detections

    def window(self) -> np.ndarray:
        """The model input of the last decision: float32[frames, features] (after any resize)."""
        return self._window.copy()

    def _decide(self, time_s: float) -> Optional[Detection]:
        self.decisions += 1
        level_dbfs = self._level_dbfs()
        probabilities = None
        if level_dbfs >= self.config.min_level_dbfs:  # the energy gate (DetectionPolicy.is_gated)
            outputs = self.model.predict(self._model_input)
            self.invocations += 1
            if self._outputs_are_logits:
                probabilities = softmax(outputs)
            else:  # clipped to [0, 1]: never a score above 1
                probabilities = to_probabilities(outputs, outputs_are_logits=False)
            self.last_probabilities = probabilities
        detection = self.policy.update(probabilities, time_s)
        if self.on_decision is not None:
            self.on_decision(Decision(time_s, level_dbfs, probabilities, detection))
        return detection

    # -- bookkeeping -------------------------------------------------------------------
    @property
    def seconds_in(self) -> float:
        """Seconds of input audio pushed so far."""
        return self.samples_in / self.input_rate_hz

    @property
    def level_dbfs(self) -> float:
        """RMS level of the last second of input, in dBFS."""
        return self._level_dbfs()

    def reset(self) -> None:
        """Forget all audio and state, as if freshly built."""
        self.features.reset()
        self.policy.reset()
        self.samples_in = self.decisions = self.invocations = 0
        self.last_probabilities = None
