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
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import numpy as np

from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
from train.kws.negatives import (VOICES, GeneratedClips, _cached, _clips_sha256, _request, _to_int16, clip_names,
                                  active_span)
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


def training_stream(split_clips, negatives, *, seed: int, recipe: StreamRecipe = REALISTIC_RECIPE) -> LabelledStream:
    """The stream the windows are cut from: ``split_clips`` and ``negatives`` (their ``_unknown_`` and
    ``_silence_`` clips) laid out by ``recipe`` with ``seed``."""
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
        sources = tuple(f"{item['event']}@{item['start_sample'] / stream.sample_rate_hz:.4f}s" for item in settings)
        return GeneratedClips(audio, classes, kinds, sources), settings, {"stream": stream.description}

    return _cached(split, "stream_windows", request, generate, data_dir, progress)
