"""Training windows cut from a stream of the training split, as the live detector sees them.

A training clip holds one word in a second of its own recording; a window of
the live detector holds whatever the last second brought: a word anywhere in
it over the gap's faint noise, the edge of the item before, a stretch of
babble at another level. :func:`cut_windows` cuts such windows from a
:class:`~train.kws.streams.LabelledStream` built from the training split
(its keyword clips and its generated negatives, the recipe of the realistic
validation and test streams, :data:`train.kws.streams.REALISTIC_RECIPE`):

* a **keyword window** holds the whole spoken part of one keyword clip
  (:func:`train.kws.negatives.active_span`) at a random place in the window;
* a **negative window** lies at a random place that touches no keyword clip:
  ``_unknown_`` when it holds at least :data:`MIN_SPEECH_S` of the spoken part
  of a non-keyword item (a synthetic word, reversed or spliced speech, babble),
  ``_silence_`` when it holds none; a window with less speech than that is
  passed over (half a syllable is neither).

:func:`training_stream_windows` makes them for a split, seeded and cached under
``kws_generated/<split>/stream_windows.npz`` with a manifest, like the negatives.
Only the training split is cut: validation and the calibration stream stay as
they are, so a model with windows is compared with one without like for like.

**Hard windows** (:func:`hard_windows`, :func:`mined_hard_windows`) are the
windows where a model, the *miner*, fires: a stream of the training split's
negatives alone (no keyword, so every window is a negative) is laid out by the
same recipe, the miner's pipeline runs over it window by window, and of each
run of consecutive windows whose largest keyword posterior passes
:data:`MINE_THRESHOLD` and beats every other class (over the miner's energy
gate, under which nothing fires) the window where it peaks is kept, the
highest :data:`MAX_HARD_WINDOWS` of them. They are labelled ``_unknown_`` when
they hold any of a non-keyword item's spoken part, ``_silence_`` otherwise.
Mining the false alarms a model makes and training on them is how detectors
meant for hours of other sound are bootstrapped; here it is done on the
training split only, so the validation stream a candidate is chosen on stays
new to it.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
from pi_runtime.record import true_runs
from train.kws.negatives import (VOICES, GeneratedClips, _cached, _clips_sha256, _request, _to_int16, active_span,
                                  clip_names, file_sha256)
from train.kws.streams import KEYWORD_CLIP_KIND, REALISTIC_RECIPE, LabelledStream, StreamRecipe, build_stream

WINDOW_S = 1.0
# A negative window is _unknown_ from this much of a non-keyword item's spoken part on; below it, _silence_
# when it holds none, passed over otherwise.
MIN_SPEECH_S = 0.15
KINDS = {"keyword": "stream_keyword", UNKNOWN_LABEL: "stream_unknown", SILENCE_LABEL: "stream_silence"}
# Tries per wanted negative window before giving up (a stream of keywords only has no room for them).
MAX_TRIES_PER_WINDOW = 50
# Most of a stream away from its keywords is gaps: without a quota, two negative windows in three would be
# _silence_, while the live detector's false alarms come from speech.
UNKNOWN_SHARE = 0.75
# Hard windows: a run of windows over this keyword posterior gives one, at most this many (the highest) are kept.
MINE_THRESHOLD = 0.8
MAX_HARD_WINDOWS = 1000
HARD_KIND = "stream_hard"


def _spoken_spans(stream: LabelledStream, bounds: np.ndarray) -> np.ndarray:
    """int64[events, 2]: the spoken part of each event (``bounds``: its first and end sample), in stream
    samples (whole stretches of background)."""
    rate = stream.sample_rate_hz
    spans = np.zeros_like(bounds)
    for row, (start, end) in enumerate(bounds.tolist()):
        if end - start > 2 * int(WINDOW_S * rate):  # a stretch of babble or noise: all of it counts
            spans[row] = start, end
            continue
        first, last = active_span(stream.audio[start:end], sample_rate_hz=rate)
        spans[row] = (start + first, start + last) if last > first else (start, start)
    return spans


def cut_windows(stream: LabelledStream, *, keyword_share: float, negatives_per_keyword: float = 1.0,
                unknown_share: float = UNKNOWN_SHARE, rng: np.random.Generator):
    """Keyword and negative windows of ``stream`` (see the module docstring).

    Parameters
    ----------
    stream : a stream whose keyword events have kind ``speech_commands`` and whose other events are
        labelled ``_unknown_`` or ``_silence_``
    keyword_share : share (0..1] of the keyword events that give one window each
    negatives_per_keyword : negative windows per keyword window
    unknown_share : share of the negative windows that are ``_unknown_`` (the rest ``_silence_``)
    rng : every random choice

    Returns
    -------
    (audio int16[n, window], classes, kinds, settings)
        ``classes`` the keyword, ``_unknown_`` or ``_silence_``; ``kinds`` from :data:`KINDS`;
        ``settings`` per window: its first sample in the stream and the event it was cut for.
    """
    if not 0.0 < keyword_share <= 1.0:
        raise ValueError(f"keyword_share must be in (0, 1], got {keyword_share!r}")
    if negatives_per_keyword < 0:
        raise ValueError(f"negatives_per_keyword must be >= 0, got {negatives_per_keyword!r}")
    if not 0.0 <= unknown_share <= 1.0:
        raise ValueError(f"unknown_share must be in [0, 1], got {unknown_share!r}")
    rate = stream.sample_rate_hz
    window = int(round(WINDOW_S * rate))
    events = stream.events
    clip_bounds = np.array([(round(e.start_s * rate), round(e.end_s * rate)) for e in events], np.int64).reshape(-1, 2)
    spans = _spoken_spans(stream, clip_bounds)
    is_keyword = np.array([event.kind == KEYWORD_CLIP_KIND for event in events], bool)
    if len(stream.audio) < window:
        raise ValueError(f"the stream is shorter than one window ({len(stream.audio)} samples)")

    starts: List[int] = []
    classes: List[str] = []
    settings: List[dict] = []
    keyword_rows = np.flatnonzero(is_keyword)
    chosen = np.sort(rng.choice(keyword_rows, size=int(round(keyword_share * len(keyword_rows))), replace=False))
    for row in chosen:
        first, last = (int(value) for value in spans[row])
        if last <= first:  # a silent clip: nothing to place
            continue
        latest_start = min(first, len(stream.audio) - window)
        earliest_start = max(0, min(last - window, latest_start))
        start = int(rng.integers(earliest_start, latest_start + 1))
        starts.append(start)
        classes.append(events[row].label)
        settings.append({"start_sample": start, "event": events[row].source})

    wanted_total = int(round(negatives_per_keyword * len(starts)))
    wanted = {UNKNOWN_LABEL: int(round(unknown_share * wanted_total))}
    wanted[SILENCE_LABEL] = wanted_total - wanted[UNKNOWN_LABEL]
    keyword_bounds = clip_bounds[is_keyword]
    other_rows = np.flatnonzero(~is_keyword)
    unknown_rows = other_rows[[events[row].label == UNKNOWN_LABEL for row in other_rows]]
    found = {UNKNOWN_LABEL: 0, SILENCE_LABEL: 0}
    tries = 0
    while found != wanted and tries < MAX_TRIES_PER_WINDOW * max(wanted_total, 1):
        tries += 1
        start = int(rng.integers(0, len(stream.audio) - window + 1))
        end = start + window
        if np.any((keyword_bounds[:, 0] < end) & (keyword_bounds[:, 1] > start)):
            continue
        speech = (np.minimum(spans[unknown_rows, 1], end) - np.maximum(spans[unknown_rows, 0], start)).clip(min=0)
        most = int(speech.max()) if speech.size else 0
        if most >= MIN_SPEECH_S * rate:
            label, source = UNKNOWN_LABEL, events[unknown_rows[int(np.argmax(speech))]].source
        elif most == 0:
            label, source = SILENCE_LABEL, ""
        else:
            continue
        if found[label] == wanted[label]:
            continue
        starts.append(start)
        classes.append(label)
        settings.append({"start_sample": start, "event": source})
        found[label] += 1
    if found != wanted:
        raise ValueError(f"found only {found} of {wanted} negative windows: the stream has too little room "
                         "away from its keywords")

    audio = np.stack([_to_int16(stream.audio[start:start + window]) for start in starts]) if starts \
        else np.zeros((0, window), np.int16)
    kinds = tuple(KINDS.get(name, KINDS["keyword"]) for name in classes)
    return audio, tuple(classes), kinds, settings


def _sources(settings: List[dict], stream: LabelledStream) -> tuple:
    """Each cut window's source: the event it was cut for and where it starts."""
    return tuple(f"{item['event']}@{item['start_sample'] / stream.sample_rate_hz:.4f}s" for item in settings)


def training_stream(split_clips, negatives, *, seed: int, recipe: StreamRecipe = REALISTIC_RECIPE) -> LabelledStream:
    """The stream the windows are cut from: ``split_clips`` (``None``: no keyword) and ``negatives`` (their
    ``_unknown_`` and ``_silence_`` clips) laid out by ``recipe`` with ``seed``."""
    negatives = negatives.select_classes((UNKNOWN_LABEL, SILENCE_LABEL))
    return build_stream(split_clips, negatives, recipe=replace(recipe, seed=seed), name="training stream")


def training_stream_windows(split: str, *, split_clips, negatives, keyword_share: float,
                            negatives_per_keyword: float = 1.0, unknown_share: float = UNKNOWN_SHARE,
                            recipe: StreamRecipe = REALISTIC_RECIPE, data_dir: Optional[Path] = None, seed: int = 0,
                            progress: bool = False):
    """:func:`cut_windows` of :func:`training_stream` for ``split``, as
    :class:`train.kws.negatives.GeneratedClips`, cached under ``kws_generated/<split>/``.

    ``split_clips`` (a :class:`train.kws.data.ClipSet`) and ``negatives`` (``GeneratedClips``) are the
    material; the cache is reused only for the same material (checksums), shares, recipe and seed.
    """
    names = clip_names(split_clips)
    request = _request("stream_windows", split, seed=seed, voices=VOICES[split], extra={
        "keyword_share": float(keyword_share), "negatives_per_keyword": float(negatives_per_keyword),
        "unknown_share": float(unknown_share),
        "recipe": replace(recipe, seed=seed).describe(), "window_s": WINDOW_S, "min_speech_s": MIN_SPEECH_S,
        "input_clips_sha256": _clips_sha256(split_clips.audio, names, split_clips.label_ids),
        "negatives_sha256": _clips_sha256(negatives.audio, negatives.classes, [])})

    def generate():
        stream = training_stream(split_clips, negatives, seed=seed, recipe=recipe)
        audio, classes, kinds, settings = cut_windows(stream, keyword_share=keyword_share,
                                                      negatives_per_keyword=negatives_per_keyword,
                                                      unknown_share=unknown_share,
                                                      rng=np.random.default_rng([seed, 7]))
        return GeneratedClips(audio, classes, kinds, _sources(settings, stream)), settings, {"stream": stream.description}

    return _cached(split, "stream_windows", request, generate, data_dir, progress)


def hard_windows(stream: LabelledStream, times_s: Sequence[float], posteriors: Sequence[Optional[np.ndarray]],
                 labels: Sequence[str], keywords: Sequence[str], *, window_s: float = WINDOW_S,
                 threshold: float = MINE_THRESHOLD, max_windows: int = MAX_HARD_WINDOWS):
    """The windows of ``stream`` where a model fired (see the module docstring).

    Parameters
    ----------
    stream : the stream the model ran over
    times_s : end of each window, seconds from the stream's start, in order
    posteriors : each window's float[len(labels)] posteriors, ``None`` where the energy gate held it back
    labels, keywords : the model's outputs and which of them are keywords
    threshold : a keyword posterior a window must reach (and beat every other output with)
    max_windows : at most this many windows, the highest peaks

    Returns
    -------
    (audio int16[n, window], classes, kinds, settings)
        In stream order; ``classes`` ``_unknown_`` or ``_silence_``; ``settings`` per window: its first
        sample, the keyword it fired for, the posterior and the event it overlaps most.
    """
    if len(times_s) != len(posteriors):
        raise ValueError(f"{len(times_s)} window times but {len(posteriors)} posteriors")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if max_windows < 0:
        raise ValueError(f"max_windows must be >= 0, got {max_windows!r}")
    unknown_keywords = [name for name in keywords if name not in labels]
    if unknown_keywords:
        raise ValueError(f"keywords {unknown_keywords} are not among the labels {list(labels)}")
    rate = stream.sample_rate_hz
    window = int(round(window_s * rate))
    keyword_columns = [list(labels).index(name) for name in keywords]
    scores = np.zeros(len(times_s))
    fired_for = np.full(len(times_s), -1)
    for row, probabilities in enumerate(posteriors):
        if probabilities is None:
            continue
        probabilities = np.asarray(probabilities, dtype=np.float64)
        best = int(np.argmax(probabilities))
        if best in keyword_columns and probabilities[best] >= threshold:
            scores[row], fired_for[row] = probabilities[best], best
    # one window per run of consecutive firing windows: where it peaks
    peaks = [start + int(np.argmax(scores[start:end])) for start, end in true_runs(fired_for >= 0)]

    events = stream.events
    bounds = np.array([(round(e.start_s * rate), round(e.end_s * rate)) for e in events], np.int64).reshape(-1, 2)
    is_keyword = np.array([event.kind == KEYWORD_CLIP_KIND for event in events], bool)
    ends = np.rint(np.asarray(times_s, dtype=np.float64) * rate).astype(np.int64)  # each window's last sample + 1
    # a keyword in the window is no false alarm; then the highest peaks, in stream order
    peaks = [peak for peak in peaks if window <= ends[peak] <= len(stream.audio) and not np.any(
        is_keyword & (bounds[:, 0] < ends[peak]) & (bounds[:, 1] > ends[peak] - window))]
    peaks = sorted(sorted(peaks, key=lambda peak: -scores[peak])[:max_windows])
    spans = _spoken_spans(stream, bounds)
    is_unknown = np.array([event.label == UNKNOWN_LABEL for event in events], bool)
    starts, classes, settings = [], [], []
    for peak in peaks:
        end = int(ends[peak])
        start = end - window
        overlap = (np.minimum(bounds[:, 1], end) - np.maximum(bounds[:, 0], start)).clip(min=0)
        speech = (np.minimum(spans[:, 1], end) - np.maximum(spans[:, 0], start)).clip(min=0) * is_unknown
        starts.append(start)
        classes.append(UNKNOWN_LABEL if speech.any() else SILENCE_LABEL)
        most = int(np.argmax(overlap)) if overlap.any() else -1
        settings.append({"start_sample": start, "fired_for": labels[int(fired_for[peak])],
                         "posterior": round(float(scores[peak]), 4),
                         "event": f"{events[most].kind}:{events[most].source}" if most >= 0 else "gap"})
    audio = np.stack([_to_int16(stream.audio[start:start + window]) for start in starts]) if starts \
        else np.zeros((0, window), np.int16)
    return audio, tuple(classes), (HARD_KIND,) * len(starts), settings


def mined_hard_windows(split: str, *, negatives, miner_path: Path, recipe: StreamRecipe = REALISTIC_RECIPE,
                       threshold: float = MINE_THRESHOLD, max_windows: int = MAX_HARD_WINDOWS,
                       data_dir: Optional[Path] = None, seed: int = 0, progress: bool = False):
    """:func:`hard_windows` of the model file ``miner_path`` over a stream of ``negatives`` (their
    ``_unknown_`` and ``_silence_`` clips, no keyword) laid out by ``recipe`` with ``seed``, as
    :class:`train.kws.negatives.GeneratedClips` cached under
    ``kws_generated/<split>/hard_windows_<the miner's sha256, 12 digits>.npz``.

    The cache is reused only for the same miner (its file's sha256), material, recipe and settings.
    """
    from pi_runtime.kws_pipeline import DetectorConfig
    from pi_runtime.model import load_model
    from train.kws.streams import run_pipeline

    miner_path = Path(miner_path)
    if not miner_path.is_file():
        raise FileNotFoundError(f"the model to mine hard windows with is missing: {miner_path}")
    negatives = negatives.select_classes((UNKNOWN_LABEL, SILENCE_LABEL))
    miner_sha256 = file_sha256(miner_path)
    product = f"hard_windows_{miner_sha256[:12]}"  # a cache per miner: models mined side by side keep theirs
    request = _request(product, split, seed=seed, voices=VOICES[split], extra={
        "miner": miner_path.name, "miner_sha256": miner_sha256, "threshold": float(threshold),
        "max_windows": int(max_windows), "recipe": replace(recipe, seed=seed).describe(), "window_s": WINDOW_S,
        "negatives_sha256": _clips_sha256(negatives.audio, negatives.classes, [])})

    def generate():
        model = load_model(miner_path)
        if model.spec is None:
            raise ValueError(f"{miner_path} is not a keyword-spotting model (no labels in its sidecar)")
        listened = DetectorConfig.from_sidecar(model.spec)
        stream = training_stream(None, negatives, seed=seed, recipe=recipe)
        # every window's posteriors: no smoothing, no gate (the miner's gate is applied below)
        run = run_pipeline(model, stream, config=replace(listened, smoothing_windows=1, min_level_dbfs=-math.inf))
        posteriors = [decision.probabilities if decision.level_dbfs >= listened.min_level_dbfs else None
                      for decision in run.decisions]
        audio, classes, kinds, settings = hard_windows(
            stream, [decision.time_s for decision in run.decisions], posteriors, run.labels, run.keywords,
            window_s=run.window_duration_s, threshold=threshold, max_windows=max_windows)
        details = {"stream": stream.description, "windows_run": len(run.decisions),
                   "gate_dbfs": listened.min_level_dbfs, "hop_ms": listened.hop_ms}
        return GeneratedClips(audio, classes, kinds, _sources(settings, stream)), settings, details

    return _cached(split, product, request, generate, data_dir, progress)
