"""train.kws.stream_windows: keyword windows hold their whole word, negative windows touch no keyword and
are labelled by the speech they hold, the quotas are kept, the same seed cuts the same windows, and the
cached product is reused only for the same material. Hard windows: one per run of windows where a model
fires, at its peak, never over a keyword or where the gate held the model back, labelled by the speech
they hold; mined through the live pipeline with a real model and cached per miner."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
from train.kws.data import ClipSet
from train.kws.streams import KEYWORD_CLIP_KIND, Event, LabelledStream, StreamRecipe
from train.kws.stream_windows import (HARD_KIND, KINDS, MIN_SPEECH_S, cut_windows, hard_windows,
                                      mined_hard_windows, training_stream_windows)

RATE_HZ = 16000
# (start s, label, kind): one-second items, a burst of tone from 0.3 to 0.7 s into each.
ITEMS = [(1.0, "go", KEYWORD_CLIP_KIND), (3.5, UNKNOWN_LABEL, "tts_word"), (6.0, "stop", KEYWORD_CLIP_KIND),
         (8.5, SILENCE_LABEL, "noise_pink"), (11.0, UNKNOWN_LABEL, "reversed"), (13.5, "go", KEYWORD_CLIP_KIND),
         (16.0, UNKNOWN_LABEL, "tts_hard")]
BURST_S = (0.3, 0.7)
TOTAL_S = 19.0


def _stream() -> LabelledStream:
    audio = np.zeros(int(TOTAL_S * RATE_HZ), np.float32)
    t = np.arange(RATE_HZ) / RATE_HZ
    burst = (t >= BURST_S[0]) & (t < BURST_S[1])
    events = []
    for number, (start_s, label, kind) in enumerate(ITEMS):
        start = int(start_s * RATE_HZ)
        tone = np.where(burst, 0.5 * np.sin(2 * np.pi * (400 + 100 * number) * t), 0.0)
        if kind == "noise_pink":  # noise over the whole item: its "spoken part" is all of it
            tone = 0.1 * np.random.default_rng(number).standard_normal(RATE_HZ)
        audio[start:start + RATE_HZ] = tone
        events.append(Event(start_s, start_s + 1.0, label, kind, source=f"item{number}"))
    return LabelledStream(audio=audio, events=tuple(events), description="toy")


def _window_start(settings_row) -> int:
    return settings_row["start_sample"]


def test_keyword_windows_hold_their_whole_word_and_its_label():
    stream = _stream()
    audio, classes, kinds, settings = cut_windows(stream, keyword_share=1.0, negatives_per_keyword=0.0,
                                                  rng=np.random.default_rng(0))
    assert classes == ("go", "stop", "go") and set(kinds) == {KINDS["keyword"]}
    for row, (start_s, label, _) in enumerate(item for item in ITEMS if item[2] == KEYWORD_CLIP_KIND):
        start = _window_start(settings[row])
        burst_start, burst_end = (int((start_s + offset) * RATE_HZ) for offset in BURST_S)
        assert start <= burst_start and burst_end <= start + RATE_HZ
        np.testing.assert_array_equal(audio[row], np.clip(np.rint(stream.audio[start:start + RATE_HZ] * 32768.0),
                                                          -32768, 32767).astype(np.int16))


def test_negative_windows_touch_no_keyword_and_are_labelled_by_the_speech_they_hold():
    stream = _stream()
    audio, classes, kinds, settings = cut_windows(stream, keyword_share=1.0, negatives_per_keyword=4.0,
                                                  unknown_share=0.5, rng=np.random.default_rng(1))
    negatives = [row for row, name in enumerate(classes) if name in (UNKNOWN_LABEL, SILENCE_LABEL)]
    assert len(negatives) == 12
    assert [classes[row] for row in negatives].count(UNKNOWN_LABEL) == 6
    keyword_items = [(int(s * RATE_HZ), int((s + 1) * RATE_HZ)) for s, _, kind in ITEMS if kind == KEYWORD_CLIP_KIND]
    speech_bursts = [(int((s + BURST_S[0]) * RATE_HZ), int((s + BURST_S[1]) * RATE_HZ))
                     for s, label, _ in ITEMS if label == UNKNOWN_LABEL]
    for row in negatives:
        start = _window_start(settings[row])
        end = start + RATE_HZ
        assert all(end <= first or start >= last for first, last in keyword_items)
        speech = max(min(end, last) - max(start, first) for first, last in speech_bursts)
        if classes[row] == UNKNOWN_LABEL:
            assert speech >= MIN_SPEECH_S * RATE_HZ and kinds[row] == KINDS[UNKNOWN_LABEL]
        else:
            assert speech <= 0 and kinds[row] == KINDS[SILENCE_LABEL]


def test_the_same_seed_cuts_the_same_windows():
    first = cut_windows(_stream(), keyword_share=1.0, rng=np.random.default_rng(5))
    again = cut_windows(_stream(), keyword_share=1.0, rng=np.random.default_rng(5))
    other = cut_windows(_stream(), keyword_share=1.0, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[3] == again[3] and first[3] != other[3]


def test_a_share_of_the_keywords_and_bad_arguments():
    _, classes, _, _ = cut_windows(_stream(), keyword_share=0.34, negatives_per_keyword=0.0,
                                   rng=np.random.default_rng(0))
    assert len(classes) == 1
    for bad in (dict(keyword_share=0.0), dict(keyword_share=1.5), dict(keyword_share=1.0, negatives_per_keyword=-1),
                dict(keyword_share=1.0, unknown_share=1.2)):
        with pytest.raises(ValueError):
            cut_windows(_stream(), rng=np.random.default_rng(0), **bad)
    crowded = LabelledStream(audio=np.ones(3 * RATE_HZ, np.float32) * 0.1, description="keywords only",
                             events=(Event(0.0, 3.0, "go", KEYWORD_CLIP_KIND),))
    with pytest.raises(ValueError, match="too little room"):
        cut_windows(crowded, keyword_share=1.0, rng=np.random.default_rng(0))


TTS_MISSING = [program for program in ("flite", "festival") if shutil.which(program) is None]


@pytest.mark.skipif(bool(TTS_MISSING), reason=f"{', '.join(TTS_MISSING)} absent (the cache records engine versions)")
def test_the_cached_windows_are_reused_for_the_same_material_only(tmp_path):
    from train.kws.negatives import GeneratedClips, cache_paths

    rng = np.random.default_rng(0)
    t = np.arange(RATE_HZ) / RATE_HZ
    tones = (np.where((t > 0.3) & (t < 0.6), 8000 * np.sin(2 * np.pi * 500 * t), 0)
             + rng.normal(0, 30, (14, RATE_HZ))).astype(np.int16)
    clips = ClipSet(audio=tones[:4], label_ids=np.array([0, 1, 0, 1], np.int32), labels=("go", "stop"),
                    paths=[Path(f"{word}/{k}.wav") for k, word in enumerate(("go", "stop", "go", "stop"))])
    negatives = GeneratedClips(audio=tones[4:], classes=(UNKNOWN_LABEL,) * 8 + (SILENCE_LABEL,) * 2,
                               kinds=("tts_word",) * 8 + ("noise_pink",) * 2,
                               sources=tuple(f"neg{k}" for k in range(10)))
    recipe = StreamRecipe(peak_dbfs=(-40.0, 0.0), background_share=0.5, background_minutes=1.0)
    made = training_stream_windows("train", split_clips=clips, negatives=negatives, keyword_share=1.0,
                                   recipe=recipe, data_dir=tmp_path, seed=0)
    assert len(made) == 8 and made.counts() == {KINDS["keyword"]: 4, KINDS[UNKNOWN_LABEL]: 3,
                                                KINDS[SILENCE_LABEL]: 1}
    npz_path, manifest_path = cache_paths("train", "stream_windows", tmp_path)
    assert npz_path.is_file() and manifest_path.is_file()
    stamp = npz_path.stat().st_mtime_ns
    again = training_stream_windows("train", split_clips=clips, negatives=negatives, keyword_share=1.0,
                                    recipe=recipe, data_dir=tmp_path, seed=0)
    np.testing.assert_array_equal(made.audio, again.audio)
    assert npz_path.stat().st_mtime_ns == stamp  # read back, not made again
    other = training_stream_windows("train", split_clips=clips, negatives=negatives.rows(range(1, 10)),
                                    keyword_share=1.0, recipe=recipe, data_dir=tmp_path, seed=0)
    assert npz_path.stat().st_mtime_ns != stamp and len(other) == 8


HARD_LABELS = ("go", "stop", SILENCE_LABEL, UNKNOWN_LABEL)


def _posterior(label: str, weight: float) -> np.ndarray:
    """``weight`` on ``label``, the rest spread evenly over the other outputs."""
    row = np.full(len(HARD_LABELS), (1.0 - weight) / (len(HARD_LABELS) - 1))
    row[HARD_LABELS.index(label)] = weight
    return row


def test_hard_windows_keep_the_peak_of_each_run_of_firing_windows_away_from_keywords():
    stream = _stream()
    # windows ending every 0.1 s; what the "model" answered in each
    times = np.round(np.arange(1.0, TOTAL_S + 1e-9, 0.1), 1)
    posteriors = {t: _posterior(SILENCE_LABEL, 0.9) for t in times}
    fires = {4.2: 0.85, 4.3: 0.95, 4.4: 0.9,       # over the tts_word at 3.5 s: one window, at 4.3
             9.1: 0.97,                              # over the pink noise at 8.5 s, no speech: _silence_
             6.8: 0.99,                              # touches the "stop" keyword at 6.0 s: not a false alarm
             12.0: 0.7,                              # under the threshold
             17.0: 0.99}                             # held back by the gate (None below)
    for t, weight in fires.items():
        posteriors[t] = _posterior("go", weight)
    posteriors[11.8] = _posterior(UNKNOWN_LABEL, 0.95)  # the rejection class wins: no fire
    rows = [None if t == 17.0 else posteriors[t] for t in times]
    audio, classes, kinds, settings = hard_windows(stream, times.tolist(), rows, HARD_LABELS, ("go", "stop"),
                                                   threshold=0.8)
    assert [row["start_sample"] for row in settings] == [int(round(3.3 * RATE_HZ)), int(round(8.1 * RATE_HZ))]
    assert classes == (UNKNOWN_LABEL, SILENCE_LABEL) and kinds == (HARD_KIND,) * 2
    assert [row["fired_for"] for row in settings] == ["go", "go"]
    assert settings[0]["posterior"] == 0.95 and settings[0]["event"] == "tts_word:item1"
    start = settings[0]["start_sample"]
    np.testing.assert_array_equal(audio[0], np.clip(np.rint(stream.audio[start:start + RATE_HZ] * 32768.0),
                                                    -32768, 32767).astype(np.int16))
    # at most max_windows, the highest peaks first, in stream order
    _, _, _, top = hard_windows(stream, times.tolist(), rows, HARD_LABELS, ("go", "stop"), threshold=0.8,
                                max_windows=1)
    assert [row["posterior"] for row in top] == [0.97]
    _, none, _, _ = hard_windows(stream, times.tolist(), rows, HARD_LABELS, ("go", "stop"), threshold=0.99)
    assert none == ()


def test_hard_windows_refuse_bad_arguments():
    stream = _stream()
    with pytest.raises(ValueError, match="window times"):
        hard_windows(stream, [1.0, 1.1], [None], HARD_LABELS, ("go",))
    with pytest.raises(ValueError, match="threshold"):
        hard_windows(stream, [1.0], [None], HARD_LABELS, ("go",), threshold=0.0)
    with pytest.raises(ValueError, match="max_windows"):
        hard_windows(stream, [1.0], [None], HARD_LABELS, ("go",), max_windows=-1)
    with pytest.raises(ValueError, match="not among the labels"):
        hard_windows(stream, [1.0], [None], HARD_LABELS, ("yes",))
    with pytest.raises(FileNotFoundError, match="missing"):
        mined_hard_windows("train", negatives=None, miner_path=Path("no/such/model.tflite"))


@pytest.mark.skipif(bool(TTS_MISSING), reason=f"{', '.join(TTS_MISSING)} absent (the cache records engine versions)")
def test_hard_windows_are_mined_with_a_model_file_and_cached_per_miner(tmp_path, tmp_path_factory):
    from kws_toy import build_toy_model, tone_word

    from train.kws.negatives import GeneratedClips, cache_paths

    toy = build_toy_model(tmp_path_factory.getbasetemp() / "toy_kws")
    rng = np.random.default_rng(0)
    # "other words" the toy model takes for its keywords (its tones), and faint noise it should not fire on
    words = np.zeros((6, RATE_HZ), np.float32)
    for row, label in enumerate(("low", "high", "chirp") * 2):
        word = tone_word(label, 0.4, 0.3, rng)
        words[row, 4000:4000 + word.size] = word
    noise = rng.normal(0, 10 ** (-75 / 20), (3, RATE_HZ)).astype(np.float32)
    audio = np.clip(np.rint(np.concatenate([words, noise]) * 32768), -32768, 32767).astype(np.int16)
    negatives = GeneratedClips(audio=audio, classes=(UNKNOWN_LABEL,) * 6 + (SILENCE_LABEL,) * 3,
                               kinds=("tts_word",) * 6 + ("noise_pink",) * 3, sources=tuple(f"neg{k}" for k in range(9)))
    recipe = StreamRecipe(gap_noise_dbfs=None)
    mined = mined_hard_windows("train", negatives=negatives, miner_path=toy, recipe=recipe, data_dir=tmp_path,
                               threshold=0.5)
    assert len(mined) >= 4 and set(mined.kinds) == {HARD_KIND}
    assert set(mined.classes) == {UNKNOWN_LABEL}  # the toy words, never the faint noise
    assert all(source.startswith("tts_word:neg") for source in mined.sources)
    caches = sorted((tmp_path / "kws_generated" / "train").glob("hard_windows_*.npz"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    again = mined_hard_windows("train", negatives=negatives, miner_path=toy, recipe=recipe, data_dir=tmp_path,
                               threshold=0.5)
    np.testing.assert_array_equal(mined.audio, again.audio)
    assert caches[0].stat().st_mtime_ns == stamp  # read back, not mined again
    fewer = mined_hard_windows("train", negatives=negatives, miner_path=toy, recipe=recipe, data_dir=tmp_path,
                               threshold=0.5, max_windows=2)
    assert len(fewer) == 2 and caches[0].stat().st_mtime_ns != stamp
    # the cache follows the miner's bytes, not where the file lies
    copy = tmp_path / "copy" / toy.name
    copy.parent.mkdir()
    shutil.copy(toy, copy)
    shutil.copy(toy.with_suffix(".json"), copy.with_suffix(".json"))
    stamp = caches[0].stat().st_mtime_ns
    from_copy = mined_hard_windows("train", negatives=negatives, miner_path=copy, recipe=recipe, data_dir=tmp_path,
                                   threshold=0.5, max_windows=2)
    np.testing.assert_array_equal(from_copy.audio, fewer.audio)
    assert caches[0].stat().st_mtime_ns == stamp and cache_paths("train", caches[0].stem, tmp_path)[0] == caches[0]
