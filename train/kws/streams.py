"""Labelled audio streams for judging a keyword spotter as it listens: build, run, score, replay, DET.

A stream is float32 audio at 16 kHz with an event list saying what lies where:
keyword clips (from a :class:`train.kws.data.ClipSet`), negative clips (from
:class:`train.kws.negatives.GeneratedClips`: synthetic non-keyword words,
reversed and spliced speech, babble, noise, ...), stretches of babble and
coloured noise on their own, and gaps of silence or faint noise between them.
Items may be scaled to a random level and mixed with babble or coloured noise
at a given signal-to-noise ratio (:mod:`train.kws.acoustics`). The same
recipe and seed give the same stream, sample for sample.

The live pipeline runs over the stream once (:func:`run_pipeline`), keeping
every window's posteriors; :func:`pi_runtime.replay.replay` then gives the
detections any other threshold or smoothing would have made (no model runs),
:func:`score` matches them to the events and :func:`det_curve` sweeps the
threshold: miss rate against false alarms per hour, the way microWakeWord and
openWakeWord judge a wake word; :func:`miss_reasons` says why each keyword not
detected was missed.

Matching (:func:`score`): a detection whose window ends between
``EARLY_S`` after a keyword event's start and ``LATE_S`` after its end belongs
to that event: a hit with the right label (the first one; a repeat is a false
alarm), a substitution with another keyword. Any other detection is a false
alarm, charged to the kind of the event its window overlaps most (``"gap"``
when it overlaps none); a non-keyword word "fired" when a false alarm is
charged to it.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from native.resample import Resampler, ratio_for
from native.ring import AudioRing
from pi_runtime.kws_pipeline import Decision, Detection, DetectionPolicy, DetectorConfig, KeywordSpotter
from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL, keyword_labels
from pi_runtime.replay import DEFAULT_THRESHOLDS, replay_thresholds
from train.kws import acoustics

SAMPLE_RATE_HZ = 16000
# A detection belongs to a keyword event when its window end lies in [start + EARLY_S, end + LATE_S].
EARLY_S, LATE_S = 0.1, 0.8
KEYWORD_CLIP_KIND = "speech_commands"   # kind of the events made from a ClipSet's clips
GAP_KIND = "gap"                         # false alarms whose window overlaps no event
# Kinds of non-keyword words (synthetic speech of other words); for a keyword-subset
# model (go/stop) the other Speech Commands words count as non-keyword words too.
WORD_KINDS = ("tts_word", "tts_hard")
BACKGROUND_KINDS = ("babble", "white", "pink", "brown")
STRETCH_PEAK_DBFS = -6.0  # level of a background stretch when the recipe sets no levels
TAIL_S = 2  # silence a stream ends with, so that its last item's late windows are heard


def background_event_kind(kind: str) -> str:
    """The event kind of a background on its own: ``"babble_stretch"`` or ``"noise_<colour>_stretch"``.

    Kept apart from the negatives' one-second ``babble`` and ``noise_<colour>`` clips: a
    negative babble clip overlaps three to six of the split's keywords, a stretch is other
    speech only, and their false alarms say different things about a model.
    """
    return f"{kind if kind == 'babble' else 'noise_' + kind}_stretch"


def is_noise_or_babble(kind: str) -> bool:
    return kind.startswith(("babble", "noise_")) or kind == "hum"


# -- the stream -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One item of a stream: seconds from the stream's start, what it is, how it was made.

    ``label`` is a keyword, ``_unknown_`` or ``_silence_`` (or a Speech Commands word);
    ``kind`` says what sort of audio it is (``speech_commands``, ``tts_word``,
    ``reversed``, ``babble``, ``noise_pink``, ...); ``condition`` the background mixed
    under it (``clean`` or e.g. ``babble 10 dB``); ``peak_dbfs`` the level it was scaled
    to (NaN: as recorded).
    """

    start_s: float
    end_s: float
    label: str
    kind: str
    source: str = ""
    condition: str = "clean"
    peak_dbfs: float = math.nan


@dataclass(frozen=True)
class LabelledStream:
    """float32 audio at ``sample_rate_hz`` and the events in it, in time order."""

    audio: np.ndarray
    events: Tuple[Event, ...]
    description: str
    sample_rate_hz: int = SAMPLE_RATE_HZ

    @property
    def duration_s(self) -> float:
        return self.audio.size / self.sample_rate_hz

    def kind_counts(self) -> Dict[str, int]:
        return dict(sorted(Counter(event.kind for event in self.events).items()))

    def halves(self) -> Tuple["LabelledStream", "LabelledStream"]:
        """The stream cut in two in the middle of the gap between events nearest its middle, each half
        a stream of its own (its events from 0 s): a setting chosen on one can be scored on the other.

        The first half gets the ``TAIL_S`` of silence a built stream ends with, so that its last
        event's late windows are heard. Raises ValueError when no two events leave a gap to cut in.
        """
        rate = self.sample_rate_hz
        gaps = [(k, before.end_s, after.start_s) for k, (before, after) in enumerate(zip(self.events, self.events[1:]))
                if after.start_s >= before.end_s]
        if not gaps:
            raise ValueError(f"no gap between two of the stream's {len(self.events)} events to cut it in")
        k, gap_start_s, gap_end_s = min(gaps, key=lambda gap: abs((gap[1] + gap[2]) / 2 - self.duration_s / 2))
        # A whole sample inside the gap: no event of either half reaches past its end or before its start.
        cut_sample = min(max(int(round((gap_start_s + gap_end_s) / 2 * rate)), math.ceil(gap_start_s * rate)),
                         math.floor(gap_end_s * rate))
        cut_s = cut_sample / rate
        first = LabelledStream(np.concatenate([self.audio[:cut_sample], np.zeros(TAIL_S * rate, self.audio.dtype)]),
                               self.events[:k + 1], f"{self.description} (first half)", rate)
        later = tuple(replace(event, start_s=event.start_s - cut_s, end_s=event.end_s - cut_s)
                      for event in self.events[k + 1:])
        second = LabelledStream(self.audio[cut_sample:], later, f"{self.description} (second half)", rate)
        return first, second


@dataclass(frozen=True)
class StreamRecipe:
    """How items become a stream.

    Parameters
    ----------
    seed : int
        Seed of every random choice (order, gaps, levels, backgrounds).
    gap_s : (float, float)
        Gap before each item, uniform in this range (s).
    gap_noise_dbfs : (float, float) or None
        Half the gaps hold white noise at an RMS level uniform in this range
        (dBFS), the others digital silence; ``None``: all silent.
    peak_dbfs : (float, float) or None
        Each item is scaled to a peak level uniform in this range (dBFS);
        ``None`` keeps it as recorded.
    background_share : float
        Share of the items mixed with a background (babble or coloured noise).
    snrs_db : tuple of float
        Signal-to-noise ratios of those backgrounds, one drawn per item.
    background_kinds : tuple of str
        ``"babble"``, ``"white"``, ``"pink"``, ``"brown"``.
    background_minutes : float
        Minutes of babble and coloured noise on their own, in stretches of
        ``stretch_s``, placed among the items (levels from ``peak_dbfs``).
    babble_talkers : (int, int)
        Talkers in a babble, uniform in this range (inclusive).
    """

    seed: int = 0
    gap_s: Tuple[float, float] = (1.0, 2.0)
    gap_noise_dbfs: Optional[Tuple[float, float]] = (-65.0, -40.0)
    peak_dbfs: Optional[Tuple[float, float]] = None
    background_share: float = 0.0
    snrs_db: Tuple[float, ...] = (20.0, 10.0, 5.0)
    background_kinds: Tuple[str, ...] = BACKGROUND_KINDS
    background_minutes: float = 0.0
    stretch_s: float = 30.0
    babble_talkers: Tuple[int, int] = (3, 7)

    def __post_init__(self) -> None:
        if not 0 <= self.gap_s[0] <= self.gap_s[1]:
            raise ValueError(f"gap_s must be (low, high) with 0 <= low <= high, got {self.gap_s}")
        if self.peak_dbfs is not None and not self.peak_dbfs[0] <= self.peak_dbfs[1] <= 0:
            raise ValueError(f"peak_dbfs must be (low, high) with low <= high <= 0 dBFS, got {self.peak_dbfs}")
        if not 0.0 <= self.background_share <= 1.0:
            raise ValueError(f"background_share must be between 0 and 1, got {self.background_share}")
        unknown = [kind for kind in self.background_kinds if kind not in BACKGROUND_KINDS]
        if unknown:
            raise ValueError(f"unknown background kind(s) {unknown}; choose from {', '.join(BACKGROUND_KINDS)}")
        if (self.background_share > 0 or self.background_minutes > 0) and not self.background_kinds:
            raise ValueError("backgrounds asked for but background_kinds is empty")
        if self.background_share > 0 and not self.snrs_db:
            raise ValueError("background_share > 0 needs at least one SNR in snrs_db")
        if self.background_minutes < 0 or not self.stretch_s > 0:
            raise ValueError("background_minutes must be >= 0 and stretch_s > 0")
        if not 1 <= self.babble_talkers[0] <= self.babble_talkers[1]:
            raise ValueError(f"babble_talkers must be (low, high) with 1 <= low <= high, got {self.babble_talkers}")

    def describe(self) -> str:
        parts = [f"gaps {self.gap_s[0]:g}-{self.gap_s[1]:g} s"
                 + (f" (half with white noise at {self.gap_noise_dbfs[0]:g}..{self.gap_noise_dbfs[1]:g} dBFS)"
                    if self.gap_noise_dbfs else " (silent)")]
        if self.peak_dbfs is not None:
            parts.append(f"items at peak {self.peak_dbfs[0]:g}..{self.peak_dbfs[1]:g} dBFS")
        if self.background_share > 0:
            parts.append(f"{100 * self.background_share:.0f} % of items over {'/'.join(self.background_kinds)} at "
                         f"{'/'.join(f'{snr:g}' for snr in self.snrs_db)} dB SNR")
        if self.background_minutes > 0:
            parts.append(f"{self.background_minutes:g} min of {'/'.join(self.background_kinds)} alone "
                         f"in {self.stretch_s:g} s stretches")
        return ", ".join(parts) + f", seed {self.seed}"


def speech_rows(negatives) -> np.ndarray:
    """Rows of ``negatives`` holding speech that is no keyword (the material of babble)."""
    if negatives is None:
        return np.zeros(0, int)
    return np.array([k for k, kind in enumerate(negatives.kinds) if kind in WORD_KINDS + ("reversed", "splice")],
                    dtype=int)


class Backgrounds:
    """Babble and coloured noise of any length, drawn from one generator (babble: ``speech_clips``, rows of
    one-second non-keyword speech, e.g. a :class:`train.kws.negatives.GeneratedClips`'s ``speech_rows``)."""

    def __init__(self, speech_clips: np.ndarray, recipe: StreamRecipe, rng: np.random.Generator) -> None:
        self._speech = speech_clips
        self._recipe = recipe
        self._rng = rng

    def make(self, kind: str, num_samples: int) -> np.ndarray:
        rng = self._rng
        if kind != "babble":
            return acoustics.coloured_noise(kind, num_samples, rng)
        low, high = self._recipe.babble_talkers
        talkers = int(rng.integers(low, high + 1))
        if len(self._speech) < talkers:
            raise ValueError(f"babble of {talkers} talkers needs at least as many non-keyword speech clips "
                             f"(tts words, reversed or spliced speech), got {len(self._speech)}")
        # Each talker says words one after another for the whole length; babble() sums them.
        clip_samples = self._speech.shape[1]
        per_track = -(-num_samples // clip_samples)
        tracks = np.stack([self._speech[rng.integers(0, len(self._speech), size=per_track)].reshape(-1)[:num_samples]
                           for _ in range(talkers)])
        return acoustics.babble(tracks, talkers=talkers, rng=rng)


def build_stream(keyword_clips=None, negatives=None, *, recipe: StreamRecipe = StreamRecipe(),
                 name: str = "stream") -> LabelledStream:
    """Keyword clips and negative clips in a shuffled order with gaps, backgrounds and levels.

    Parameters
    ----------
    keyword_clips : train.kws.data.ClipSet, optional
        One-second clips (int16 at 16 kHz) and their labels; events of kind
        ``speech_commands``.
    negatives : train.kws.negatives.GeneratedClips, optional
        One-second clips with ``classes``, ``kinds`` and ``sources`` per clip.
    recipe : StreamRecipe
    name : str
        Start of the stream's description (e.g. "validation stream").

    Returns
    -------
    LabelledStream
        float32 audio at 16 kHz, two seconds of silence at the end, and its events.
    """
    items: List[Tuple[np.ndarray, str, str, str]] = []  # audio, label, kind, source
    if keyword_clips is not None:
        for audio, label_id, path in zip(keyword_clips.audio, keyword_clips.label_ids, keyword_clips.paths):
            source = f"{path.parent.name}/{path.name}" if hasattr(path, "parent") else str(path)
            items.append((audio, keyword_clips.labels[int(label_id)], KEYWORD_CLIP_KIND, source))
    if negatives is not None:
        for k in range(len(negatives.kinds)):
            items.append((negatives.audio[k], negatives.classes[k], negatives.kinds[k], negatives.sources[k]))
    stretches = int(round(recipe.background_minutes * 60 / recipe.stretch_s))
    if not items and not stretches:
        raise ValueError("a stream needs keyword clips, negatives or background minutes")

    rng = np.random.default_rng(recipe.seed)
    speech = negatives.audio[speech_rows(negatives)] if negatives is not None else np.zeros((0, SAMPLE_RATE_HZ))
    backgrounds = Backgrounds(np.asarray(speech), recipe, rng)
    stretch_kinds = [recipe.background_kinds[k] for k in rng.integers(0, len(recipe.background_kinds), stretches)]
    order = rng.permutation(len(items) + stretches)  # indices >= len(items) are the stretches

    pieces: List[np.ndarray] = []
    events: List[Event] = []
    position = 0
    for index in order:
        gap = int(rng.uniform(*recipe.gap_s) * SAMPLE_RATE_HZ)
        if recipe.gap_noise_dbfs is not None and rng.random() < 0.5:
            level = 10 ** (rng.uniform(*recipe.gap_noise_dbfs) / 20)
            pieces.append((rng.standard_normal(gap) * level).astype(np.float32))
        else:
            pieces.append(np.zeros(gap, np.float32))
        position += gap
        peak_dbfs = math.nan if recipe.peak_dbfs is None else float(rng.uniform(*recipe.peak_dbfs))
        if index >= len(items):  # babble or coloured noise on its own
            kind = stretch_kinds[index - len(items)]
            audio = backgrounds.make(kind, int(recipe.stretch_s * SAMPLE_RATE_HZ))
            audio = acoustics.scale_to_peak_dbfs(audio, STRETCH_PEAK_DBFS if math.isnan(peak_dbfs) else peak_dbfs)
            label = UNKNOWN_LABEL if kind == "babble" else SILENCE_LABEL
            event_kind, source, condition = background_event_kind(kind), f"{kind} stretch", "clean"
        else:
            clip, label, event_kind, source = items[index]
            audio = clip.astype(np.float32) / 32768.0 if clip.dtype == np.int16 else clip.astype(np.float32)
            condition = "clean"
            if recipe.background_share > 0 and rng.random() < recipe.background_share:
                kind = recipe.background_kinds[int(rng.integers(len(recipe.background_kinds)))]
                snr_db = float(recipe.snrs_db[int(rng.integers(len(recipe.snrs_db)))])
                noise = backgrounds.make(kind, audio.size)
                if math.isfinite(acoustics.active_rms_dbfs(audio)):  # digital silence has no SNR
                    audio = acoustics.mix_at_snr(audio, noise, snr_db)
                    condition = f"{kind} {snr_db:g} dB"
            if not math.isnan(peak_dbfs):
                audio = acoustics.scale_to_peak_dbfs(audio, peak_dbfs)
        pieces.append(np.clip(audio, -1.0, 1.0).astype(np.float32))
        events.append(Event(position / SAMPLE_RATE_HZ, (position + audio.size) / SAMPLE_RATE_HZ, str(label),
                            str(event_kind), str(source), condition, peak_dbfs))
        position += audio.size
    pieces.append(np.zeros(TAIL_S * SAMPLE_RATE_HZ, np.float32))
    audio = np.concatenate(pieces)
    counts = Counter(event.kind for event in events)
    description = (f"{name}: {audio.size / SAMPLE_RATE_HZ / 60:.1f} min, "
                   + ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
                   + f"; {recipe.describe()}")
    return LabelledStream(audio=audio, events=tuple(events), description=description)


# The realistic stream of the benchmark (test split) and the calibration (validation split):
# every keyword clip of the split, the split's held-out negatives, half the items over babble or
# coloured noise at 20, 10 or 5 dB SNR, items at peak levels from -40 to 0 dBFS, and half an hour
# of babble and coloured noise on their own.
REALISTIC_RECIPE = StreamRecipe(peak_dbfs=(-40.0, 0.0), background_share=0.5, snrs_db=(20.0, 10.0, 5.0),
                                background_minutes=30.0, stretch_s=30.0)


def realistic_stream(split: str, *, data_dir=None, seed: int = 0, recipe: StreamRecipe = REALISTIC_RECIPE,
                     progress: bool = False) -> LabelledStream:
    """The realistic stream of ``split`` ("val" for calibration, "test" for the benchmark, "train" to
    see how much of what a model misses there it misses on the material it learnt from).

    Reads the split's keyword clips and its generated negatives
    (:func:`train.kws.negatives.build_negatives`, cached under the data folder). The training
    stream is made like the others: as many keyword clips as the validation split has and, of each
    kind of negative, as many as a validation stream holds, drawn with ``seed``.
    """
    from train.kws.data import ClipSet, load_split
    from train.kws.negatives import DEFAULT_SIZES, build_negatives

    if split not in ("train", "val", "test"):
        raise ValueError(f"a realistic stream is built from the 'train', 'val' or 'test' split, got {split!r}")
    clips = load_split(split, data_dir=data_dir)
    negatives = build_negatives(split, split_clips=clips, data_dir=data_dir, seed=seed, progress=progress)
    negatives = negatives.select_classes((UNKNOWN_LABEL, SILENCE_LABEL))  # no synthetic keywords
    if split == "train":
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(clips.label_ids), len(load_split("val", data_dir=data_dir).label_ids),
                                  replace=False))
        clips = ClipSet(audio=clips.audio[keep], label_ids=clips.label_ids[keep], labels=clips.labels,
                        paths=[clips.paths[row] for row in keep])
        rows = [row for kind, count in DEFAULT_SIZES["val"].items()
                for row in rng.permutation([k for k, own in enumerate(negatives.kinds) if own == kind])[:count]]
        negatives = negatives.rows(sorted(int(row) for row in rows))
    name = {"train": "training stream (train split's keywords and negatives, drawn to a validation stream's counts)",
            "val": "validation stream (val split, val negatives)",
            "test": "test stream (test split, held-out test negatives)"}[split]
    return build_stream(clips, negatives, recipe=replace(recipe, seed=seed), name=name)


# -- running the pipeline -------------------------------------------------------------------------
@dataclass
class PipelineRun:
    """What the live pipeline did on a stream: every decision (posteriors kept), detections, cost."""

    decisions: List[Decision]
    detections: List[Detection]
    labels: List[str]
    keywords: Tuple[str, ...]
    config: DetectorConfig
    window_duration_s: float
    wall_s: float
    cpu_s: float
    overrun_samples: int


def run_pipeline(model, stream: LabelledStream, *, config: DetectorConfig = DetectorConfig(),
                 input_rate_hz: int = SAMPLE_RATE_HZ, block_ms: float = 10.0,
                 chunk_s: float = 10.0, keywords: Optional[Sequence[str]] = None) -> PipelineRun:
    """The listen pipeline over ``stream``: blocks into a native AudioRing (as the audio
    callback does), read back one hop at a time into a KeywordSpotter, flushed at the end.

    Parameters
    ----------
    model : pi_runtime.model.LoadedModel
    stream : LabelledStream
    config : DetectorConfig
        Run with ``min_level_dbfs=-inf`` to keep every window's posteriors, so
        that :func:`replay` can apply any gate afterwards.
    input_rate_hz : int
        The stream is resampled to this rate piece by piece (a streaming
        resampler: a long stream never exists at 48 kHz in memory).
    keywords : sequence of str, optional
        Listen for these of the model's keywords only (``KeywordSpotter``'s
        ``keywords``); the stream's clips of the others are then non-keyword words.
    """
    decisions: List[Decision] = []
    spotter = KeywordSpotter(model, input_rate_hz=input_rate_hz, config=config, on_decision=decisions.append,
                             keywords=keywords)
    up, down = ratio_for(stream.sample_rate_hz, input_rate_hz)
    resampler = Resampler(up, down) if up != down else None
    ring = AudioRing(2 * input_rate_hz)
    block = max(1, int(input_rate_hz * block_ms / 1000))
    hop = max(1, int(round(spotter.hop_s * input_rate_hz)))
    detections: List[Detection] = []
    chunk = int(chunk_s * stream.sample_rate_hz)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, stream.audio.size + chunk, chunk):
        if start < stream.audio.size:
            piece = stream.audio[start:start + chunk]
            audio = resampler.process(piece) if resampler is not None else piece
        elif resampler is not None:
            audio = resampler.flush()
        else:
            break
        for block_start in range(0, audio.size, block):
            ring.write(audio[block_start:block_start + block])    # the audio callback
            while ring.available >= hop:                            # the consumer
                detections += spotter.push(ring.read(hop))
    detections += spotter.push(ring.read(ring.available))
    detections += spotter.flush()
    return PipelineRun(decisions, detections, list(spotter.labels), spotter.keywords, config,
                       spotter.policy.window_duration_s, time.perf_counter() - wall, time.process_time() - cpu,
                       ring.overrun_samples)


# -- scoring --------------------------------------------------------------------------------------
@dataclass
class StreamScore:
    """Detections matched to a stream's events (see the module docstring)."""

    keywords: int                       # keyword events
    detected: int                       # of them detected with the right label
    substitutions: int
    false_alarms: int
    duration_s: float
    false_alarms_by_kind: Dict[str, int] = field(default_factory=dict)
    seconds_by_kind: Dict[str, float] = field(default_factory=dict)   # exposure, incl. "gap"
    words: int = 0                      # non-keyword word events
    words_fired: int = 0
    delays_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    detected_by: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # condition or level band -> (hits, n)
    missed: Tuple[int, ...] = ()        # indices into the stream's events of the keywords not detected

    @property
    def detected_percent(self) -> float:
        return 100.0 * self.detected / self.keywords if self.keywords else math.nan

    @property
    def miss_rate(self) -> float:
        return 1.0 - self.detected / self.keywords if self.keywords else math.nan

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms * 3600.0 / self.duration_s

    def false_alarms_of(self, kinds: Sequence[str]) -> int:
        """False alarms charged to ``kinds``."""
        return sum(self.false_alarms_by_kind.get(kind, 0) for kind in kinds)

    def seconds_of(self, kinds: Sequence[str]) -> float:
        """Seconds of audio of ``kinds``."""
        return sum(self.seconds_by_kind.get(kind, 0.0) for kind in kinds)

    def false_alarms_per_hour_of(self, kinds: Sequence[str]) -> float:
        """False alarms charged to ``kinds`` per hour of audio of those kinds."""
        seconds = self.seconds_of(kinds)
        return self.false_alarms_of(kinds) * 3600.0 / seconds if seconds > 0 else math.nan

    @property
    def words_fired_percent(self) -> float:
        return 100.0 * self.words_fired / self.words if self.words else math.nan

    @property
    def noise_and_babble_kinds(self) -> List[str]:
        return [kind for kind in self.seconds_by_kind if is_noise_or_babble(kind)]

    def to_dict(self) -> dict:
        """The headline numbers, rounded, for a sidecar or a report."""
        noise = self.noise_and_babble_kinds
        return {
            "keywords": self.keywords,
            "keywords_detected_percent": round(self.detected_percent, 2),
            "substitutions": self.substitutions,
            "false_alarms": self.false_alarms,
            "false_alarms_per_hour": round(self.false_alarms_per_hour, 3),
            "non_keyword_words": self.words,
            "non_keyword_words_fired_percent": (round(self.words_fired_percent, 2) if self.words else None),
            "false_alarms_per_hour_noise_and_babble": (round(self.false_alarms_per_hour_of(noise), 3)
                                                       if noise else None),
            "false_alarms_by_kind": dict(sorted(self.false_alarms_by_kind.items())),
            "hours": round(self.duration_s / 3600.0, 4),
        }


def level_band(peak_dbfs: float) -> str:
    """``"peak -40..-30 dBFS"``-style band of 10 dB, or ``"as recorded"``."""
    if math.isnan(peak_dbfs):
        return "as recorded"
    low = 10 * math.floor(peak_dbfs / 10)
    return f"peak {low:g}..{low + 10:g} dBFS"


def score(detections: Sequence[Detection], stream: LabelledStream, *,
          keywords: Sequence[str]) -> StreamScore:
    """Match ``detections`` to the events of ``stream`` for a model whose keywords are ``keywords``."""
    keywords = set(keywords)
    events = stream.events
    is_keyword = np.array([event.label in keywords for event in events], bool)
    starts = np.array([event.start_s for event in events])
    ends = np.array([event.end_s for event in events])
    positive = np.flatnonzero(is_keyword)
    positive_starts = starts[positive]
    is_word = np.array([not kw and (event.kind in WORD_KINDS or event.kind == KEYWORD_CLIP_KIND)
                        for kw, event in zip(is_keyword, events)], bool)

    found = np.zeros(len(events), bool)
    fired = np.zeros(len(events), bool)
    substitutions = 0
    false_alarms: Counter = Counter()
    delays = []
    for detection in detections:
        t = detection.time_s
        # The latest keyword event starting early enough for this window end.
        k = int(np.searchsorted(positive_starts, t - EARLY_S, side="right")) - 1
        if k >= 0 and t <= ends[positive[k]] + LATE_S:
            event = positive[k]
            if detection.label != events[event].label:
                substitutions += 1
                continue
            if not found[event]:
                found[event] = True
                delays.append(t - ends[event])
                continue
        # A false alarm: charged to the event the window overlaps most.
        window_start = t - (detection.time_s - detection.window_start_s)
        overlap = np.minimum(ends, t) - np.maximum(starts, window_start)
        best = int(np.argmax(overlap)) if len(events) else -1
        if best < 0 or overlap[best] <= 0:
            false_alarms[GAP_KIND] += 1
        else:
            false_alarms[events[best].kind] += 1
            fired[best] = True

    seconds: Counter = Counter()
    for event in events:
        seconds[event.kind] += event.end_s - event.start_s
    seconds[GAP_KIND] = stream.duration_s - float(np.sum(ends - starts))
    detected_by: Dict[str, Tuple[int, int]] = {}
    for event, hit in zip((events[k] for k in positive), found[positive]):
        for key in (f"condition: {event.condition}", f"level: {level_band(event.peak_dbfs)}"):
            hits, total = detected_by.get(key, (0, 0))
            detected_by[key] = (hits + int(hit), total + 1)
    return StreamScore(keywords=len(positive), detected=int(found.sum()), substitutions=substitutions,
                       false_alarms=sum(false_alarms.values()), duration_s=stream.duration_s,
                       false_alarms_by_kind=dict(false_alarms), seconds_by_kind=dict(seconds),
                       words=int(is_word.sum()), words_fired=int((fired & is_word).sum()),
                       delays_s=np.array(delays), detected_by=dict(sorted(detected_by.items())),
                       missed=tuple(int(k) for k in positive[~found[positive]]))


# -- why keywords were missed ---------------------------------------------------------------------
MISS_GATED = "gated: every window too quiet"
MISS_BELOW_THRESHOLD = "right word, below the threshold"
MISS_HELD_BACK = "right word over the threshold, held back"  # refractory period or not re-armed
MISS_REJECTED = "taken for _unknown_ or _silence_"
MISS_OTHER_KEYWORD = "taken for another word"
MISS_REASONS = (MISS_BELOW_THRESHOLD, MISS_REJECTED, MISS_OTHER_KEYWORD, MISS_GATED, MISS_HELD_BACK)


def miss_reasons(decisions: Sequence[Decision], labels: Sequence[str], stream: LabelledStream,
                 missed: Sequence[int], *, config: DetectorConfig, keywords: Optional[Sequence[str]] = None,
                 window_duration_s: float = 1.0) -> Dict[str, int]:
    """Why each keyword event in ``missed`` (indices into ``stream.events``, as
    :attr:`StreamScore.missed` holds them) was not detected, counted by reason.

    Over the windows whose end lies in the event's matching interval, smoothed
    as the policy smooths them with ``config``: every window gated
    (:data:`MISS_GATED`); else the right word led the smoothed posteriors in
    some window but never reached the threshold (:data:`MISS_BELOW_THRESHOLD`)
    or did and the policy held it back (:data:`MISS_HELD_BACK`); else the label
    that led most windows was ``_unknown_``/``_silence_`` (:data:`MISS_REJECTED`)
    or another word (:data:`MISS_OTHER_KEYWORD`).
    """
    policy = DetectionPolicy(labels, config, window_duration_s=window_duration_s, keywords=keywords)
    times = np.array([decision.time_s for decision in decisions])
    smoothed = np.zeros((len(decisions), len(policy.labels)))
    gated = np.zeros(len(decisions), bool)
    for row, decision in enumerate(decisions):
        gated[row] = decision.probabilities is None or policy.is_gated(decision.level_dbfs)
        policy.smooth(None if gated[row] else decision.probabilities)
        smoothed[row] = policy.smoothed
    rivals = set(policy.rival_indices)
    counts = {reason: 0 for reason in MISS_REASONS}
    for index in missed:
        event = stream.events[index]
        start = np.searchsorted(times, event.start_s + EARLY_S, side="left")  # decisions come in time order
        end = np.searchsorted(times, event.end_s + LATE_S, side="right")
        rows = start + np.flatnonzero(~gated[start:end])
        if rows.size == 0:
            counts[MISS_GATED] += 1
            continue
        right = policy.labels.index(event.label)
        leaders = smoothed[rows].argmax(axis=1)
        if (leaders == right).any():
            best = smoothed[rows[leaders == right], right].max()
            counts[MISS_HELD_BACK if best >= config.threshold else MISS_BELOW_THRESHOLD] += 1
            continue
        winner = Counter(leaders.tolist()).most_common(1)[0][0]
        counts[MISS_REJECTED if winner in rivals else MISS_OTHER_KEYWORD] += 1
    return counts


# -- the DET curve --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetCurve:
    """Miss rate and false alarms per hour at each threshold (same posteriors, other thresholds)."""

    thresholds: np.ndarray
    miss_rate: np.ndarray
    false_alarms_per_hour: np.ndarray
    scores: Tuple[StreamScore, ...]


def det_curve(decisions: Sequence[Decision], labels: Sequence[str], stream: LabelledStream, *,
              config: DetectorConfig, keywords: Optional[Sequence[str]] = None,
              thresholds: Sequence[float] = DEFAULT_THRESHOLDS, window_duration_s: float = 1.0,
              pooled: Optional[np.ndarray] = None) -> DetCurve:
    """Replay ``decisions`` with ``config`` at each of ``thresholds`` and score each replay
    (``pooled``: see :func:`replay_thresholds`).

    The miss rate counts substitutions as misses; false alarms per hour are over the whole
    stream (substitutions not included).
    """
    keywords = keyword_labels(labels, keywords)
    replays = replay_thresholds(decisions, labels, config, thresholds, keywords=keywords,
                                window_duration_s=window_duration_s, pooled=pooled)
    scores = tuple(score(detections, stream, keywords=keywords) for detections in replays)
    return DetCurve(thresholds=np.asarray(thresholds, dtype=np.float64),
                    miss_rate=np.array([s.miss_rate for s in scores]),
                    false_alarms_per_hour=np.array([s.false_alarms_per_hour for s in scores]),
                    scores=scores)
