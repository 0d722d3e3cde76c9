"""train.kws.negatives: synthetic words, derived negatives, splits, determinism and the cache.

Speech synthesis needs Debian's flite and festival (and the wamerican word
list); tests that speak are skipped, with the install line, where they are absent.
"""
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from train.kws import acoustics, negatives
from train.kws.data import LABELS, UNKNOWN_LABEL, ClipSet

TTS_MISSING = [program for program in ("flite", "t2p", "festival") if shutil.which(program) is None]
if not negatives.WORD_LIST_PATH.is_file():
    TTS_MISSING.append(str(negatives.WORD_LIST_PATH))
requires_tts = pytest.mark.skipif(bool(TTS_MISSING), reason=f"{', '.join(TTS_MISSING)} absent: "
                                                             f"{negatives.APT_INSTALL_LINE}")
SPEECH_KINDS = ("tts_word", "tts_hard")


def toy_split_clips(num_clips=12, seed=0):
    """Tone bursts standing for spoken keywords (one label per clip, cycling), over a faint background."""
    rng = np.random.default_rng(seed)
    audio = np.zeros((num_clips, 16000), np.int16)
    time_s = np.arange(5000) / 16000
    for row in range(num_clips):
        burst = 3000 * np.sin(2 * np.pi * (200 + 50 * row) * time_s) * np.hanning(5000)
        audio[row, 4000:9000] = burst.astype(np.int16)
        audio[row] += rng.integers(-20, 21, 16000).astype(np.int16)
    label_ids = np.arange(num_clips) % len(LABELS)
    paths = [Path(f"/data/mini_speech_commands/{LABELS[label]}/clip{row}.wav") for row, label in enumerate(label_ids)]
    return ClipSet(audio=audio, label_ids=label_ids.astype(np.int32), labels=LABELS, paths=paths)


# -- words and voices ---------------------------------------------------------

def test_voices_are_speaker_disjoint_and_test_holds_out_a_speaker():
    speakers = {split: {voice.speaker for voice in voices} for split, voices in negatives.VOICES.items()}
    assert speakers == {"train": {"kal", "awb"}, "val": {"rms"}, "test": {"slt"}}
    names = [voice.name for voices in negatives.VOICES.values() for voice in voices]
    assert len(names) == len(set(names)) and not any("awb_time" in name for name in names)


ACCENTED_MISSING = [voice.engine_voice for voices in negatives.ACCENTED_VOICES.values() for voice in voices
                    if not any(Path("/usr/share/festival/voices").glob(f"*/{voice.engine_voice}"))]
requires_accented_voices = pytest.mark.skipif(bool(TTS_MISSING or ACCENTED_MISSING),
                                              reason=f"festival voices absent: {negatives.ACCENTED_INSTALL_LINE}")


def test_accented_voices_are_women_of_their_own_split_with_every_keyword_respelled():
    english = {voice.speaker for voices in negatives.VOICES.values() for voice in voices}
    speakers = {split: {voice.speaker for voice in voices} for split, voices in negatives.ACCENTED_VOICES.items()}
    assert speakers == {"train": {"lp", "dita"}, "val": {"lj"}, "test": set()}
    assert not (speakers["train"] & speakers["val"]) and not (english & (speakers["train"] | speakers["val"]))
    for voice in negatives.ACCENTED_VOICES["train"] + negatives.ACCENTED_VOICES["val"]:
        assert voice.engine == "festival" and not voice.is_hts and voice.base_f0_hz >= 150
        assert sorted(dict(voice.spellings)) == sorted(LABELS)
        assert voice.spelling("yes") in ("ies", "jes") and voice.spelling("gopher") == "gopher"
        assert voice.request()["spellings"]
    # The English voices' cache requests are what they were before voices could be respelled.
    assert negatives.VOICES["val"][0].request() == {"name": "flite_rms", "engine": "flite", "engine_voice": "rms",
                                                    "speaker": "rms", "native_pitch": False, "base_f0_hz": 84.0}
    for voice in sum(negatives.VOICES.values(), ()):
        assert list(voice.request()) == ["name", "engine", "engine_voice", "speaker", "native_pitch", "base_f0_hz"]
    assert [voice.is_hts for voice in negatives.VOICES["test"]] == [False, True]


def test_festival_scripts_set_speed_and_pitch_the_way_each_kind_of_voice_takes_them(tmp_path):
    voices = {voice.name: voice for voice in sum(negatives.VOICES.values(), ()) + negatives.ACCENTED_VOICES["train"]}
    scripts = {}
    for name in ("festival_kal_diphone", "festival_cmu_us_slt_arctic_hts", "festival_lp_diphone"):
        utterance, = negatives.draw_utterances(["go"], [voices[name]], np.random.default_rng(0))
        (tmp_path / name).mkdir()
        negatives._festival_job([utterance], [0], tmp_path / name)  # writes the script, runs nothing
        scripts[name] = (tmp_path / name / "festival_0.scm").read_text()
    kal, slt, lp = scripts.values()
    assert "Duration_Stretch" in kal and "int_lr_params" in kal and "hts_engine_params" not in kal
    assert "hts_engine_params" in slt and "Duration_Stretch" not in slt and "int_lr_params" not in slt
    assert "Duration_Stretch" in lp and "int_lr_params" not in lp and "hts_engine_params" not in lp
    assert '(Utterance Text "gou")' in lp and '(Utterance Text "go")' in kal


def test_word_split_is_stable_and_both_word_lists_fall_in_three_parts():
    assert negatives.word_split("gopher") == negatives.word_split("gopher")
    for hard in (False, True):
        words = negatives.hard_negative_words() if hard else ("apple", "table", "zebra", "mint", "car", "sofa")
        assert {negatives.word_split(word, hard=hard) for word in words} <= set(negatives.SPLITS)
    hard_splits = {negatives.word_split(word, hard=True) for word in negatives.hard_negative_words()}
    assert hard_splits == set(negatives.SPLITS)  # every split gets hard negatives


def test_hard_negatives_hold_the_issue_examples_and_no_keyword_or_listed_homophone():
    hard = set(negatives.hard_negative_words())
    assert {"dog", "goal", "top", "stopped", "now", "nope", "yet", "cup", "light", "lift", "ride", "town",
            "done"} <= hard
    listed = {word for words in negatives.HOMOPHONES.values() for word in words}
    assert not hard & (set(LABELS) | listed)
    assert {"know", "write", "rite", "wright"} <= listed


@requires_tts
def test_homophones_are_found_by_pronunciation_and_excluded_from_every_word_list():
    found = negatives.homophone_of(["know", "noh", "write", "rite", "wright", "knows", "gopher", "town"])
    assert found == {"know": "no", "noh": "no", "write": "right", "rite": "right", "wright": "right"}
    assert negatives.homophone_of(list(negatives.hard_negative_words())) == {}
    words = set(negatives.dictionary_words())
    assert len(words) > 20000
    assert not words & ({"know", "noh", "write", "rite", "wright"} | set(LABELS))
    assert all(word.isalpha() and word.islower() and 2 <= len(word) <= 8 for word in words)


@requires_tts
def test_split_words_are_disjoint_between_splits_and_deterministic():
    chosen = {split: negatives.split_words(split, 60, seed=1) for split in negatives.SPLITS}
    for split, words in chosen.items():
        assert len(words) == len(set(words)) == 60
        assert all(negatives.word_split(word) == split for word in words)
    assert not set(chosen["train"]) & (set(chosen["val"]) | set(chosen["test"]))
    assert not set(chosen["val"]) & set(chosen["test"])
    assert negatives.split_words("val", 60, seed=1) == chosen["val"]
    assert negatives.split_words("val", 60, seed=2) != chosen["val"]
    hard = {split: set(negatives.split_words(split, 40, seed=1, hard=True)) for split in negatives.SPLITS}
    assert not hard["train"] & (hard["val"] | hard["test"]) and not hard["val"] & hard["test"]


# -- synthesis ----------------------------------------------------------------

@requires_tts
@pytest.mark.parametrize("voice", [voice for voices in negatives.VOICES.values() for voice in voices],
                         ids=lambda voice: voice.name)
def test_every_voice_speaks_a_word_at_16_khz(voice):
    utterance, = negatives.draw_utterances(["gopher"], [voice], np.random.default_rng(0))
    word, = negatives.synthesize([utterance])
    assert word.dtype == np.float32
    assert 0.2 < len(word) / 16000 < 1.0  # trimmed: "gopher" lasts about half a second
    clip = negatives.place_word(word, utterance)
    assert clip.shape == (16000,)
    assert acoustics.peak_dbfs(clip) == pytest.approx(utterance.peak_dbfs, abs=0.5)


def median_f0_hz(word, rate_hz=16000):
    """Median pitch over the loud 40 ms frames, from the autocorrelation peak between 60 and 400 Hz."""
    frame = int(0.04 * rate_hz)
    estimates = []
    for start in range(0, len(word) - frame, frame // 2):
        part = word[start:start + frame].astype(np.float64)
        part -= part.mean()
        if np.sqrt(np.mean(part ** 2)) < 0.1 * np.abs(word).max():
            continue
        correlation = np.correlate(part, part, "full")[frame - 1:]
        low, high = rate_hz // 400, rate_hz // 60
        lag = low + int(np.argmax(correlation[low:high]))
        if correlation[lag] > 0.4 * correlation[0]:
            estimates.append(rate_hz / lag)
    return float(np.median(estimates))


@requires_tts
@pytest.mark.parametrize("voice_name", ["flite_kal", "festival_kal_diphone", "flite_rms"])
def test_two_words_one_voice_rates_and_pitches_change_the_sound(voice_name):
    voice, = [voice for voices in negatives.VOICES.values() for voice in voices if voice.name == voice_name]
    base = negatives.draw_utterances(["gopher", "town"], [voice], np.random.default_rng(0))

    def spoken(**settings):
        return negatives.synthesize([negatives.Utterance(**{**u.__dict__, **settings}) for u in base])

    slow, fast = spoken(duration_stretch=1.3, pitch_factor=1.0), spoken(duration_stretch=0.8, pitch_factor=1.0)
    low, high = spoken(duration_stretch=1.0, pitch_factor=0.9), spoken(duration_stretch=1.0, pitch_factor=1.1)
    for slow_word, fast_word, low_word, high_word in zip(slow, fast, low, high):
        assert len(slow_word) > 1.3 * len(fast_word)
        assert median_f0_hz(high_word) / median_f0_hz(low_word) == pytest.approx(1.1 / 0.9, rel=0.08)


def test_place_word_levels_places_and_drops_what_is_too_long():
    utterance = negatives.Utterance("x", negatives.VOICES["val"][0], 1.0, 1.0, offset_fraction=1.0,
                                    peak_dbfs=-12.0, floor_kind="pink", floor_dbfs=-70.0, noise_seed=3)
    word = acoustics.coloured_noise("white", 4000, np.random.default_rng(0)) * 0.1
    clip = negatives.place_word(word, utterance)
    assert acoustics.peak_dbfs(clip[12000:]) == pytest.approx(-12.0, abs=0.2)  # at the very end (offset 1.0)
    assert acoustics.rms_dbfs(clip[:12000]) == pytest.approx(-70.0, abs=1.0)  # the noise floor before it
    assert negatives.place_word(np.ones(16001, np.float32) * 0.1, utterance) is None


def test_missing_programs_are_named_with_the_install_line(monkeypatch):
    monkeypatch.setattr(negatives.shutil, "which", lambda program: None)
    with pytest.raises(RuntimeError) as error:
        negatives.synthesize(negatives.draw_utterances(["gopher"], negatives.VOICES["test"], np.random.default_rng(0)))
    assert "festival" in str(error.value) and "flite" in str(error.value)
    assert negatives.APT_INSTALL_LINE in str(error.value)


# -- derived negatives --------------------------------------------------------

def test_derived_negatives_have_their_classes_shapes_and_levels():
    split = toy_split_clips()
    names = [f"{p.parent.name}/{p.name}" for p in split.paths]
    sizes = {kind: 6 for kind in negatives.DEFAULT_SIZES["train"] if kind not in negatives.SPEECH_MADE_KINDS}
    clips, settings = negatives.derive_negatives(split.audio, names, split.label_ids, sizes,
                                                 np.random.default_rng(0))
    assert clips.audio.shape == (6 * len(sizes), 16000) and clips.audio.dtype == np.int16
    assert len(settings) == len(clips) and clips.counts() == sizes
    for clip, name, kind, source in zip(clips.audio, clips.classes, clips.kinds, clips.sources):
        silence = kind in negatives.SILENCE_KINDS
        assert name == (negatives.SILENCE_LABEL if silence else negatives.UNKNOWN_LABEL)
        level_dbfs = acoustics.rms_dbfs(clip)
        if kind.startswith("noise_"):
            assert -76 <= level_dbfs <= -29
        elif kind == "hum":
            assert -71 <= level_dbfs <= -34
        elif kind == "room_tone":
            assert -87 <= level_dbfs <= -59
        elif kind == "quiet":
            assert np.abs(clip).max() <= 2
        elif kind == "reversed":
            np.testing.assert_array_equal(clip, split.audio[names.index(source)][::-1])
        elif kind == "half":
            source_clip = split.audio[names.index(source)]
            start, end = negatives.active_span(clip)
            source_start, source_end = negatives.active_span(source_clip)
            assert (end - start) < 0.7 * (source_end - source_start)
            assert acoustics.peak_dbfs(clip) <= acoustics.peak_dbfs(source_clip) + 0.01
        elif kind == "splice":
            first, second = source.split("+")
            assert first.split("/")[0] != second.split("/")[0]  # two different words
        elif kind == "clipped":
            assert np.abs(clip).max() >= 32767 and (np.abs(clip) >= 32767).mean() > 0.001
        elif kind == "babble":
            assert 3 <= int(source.split()[-1]) <= 6 and acoustics.peak_dbfs(clip) < -6
        elif kind == "tonal":  # a peak of -35 to -3 dBFS, its floor 30-45 dB under it
            assert -36 <= acoustics.peak_dbfs(clip) <= -2.5 and source.startswith("tonal ")


def test_babble_negatives_record_their_talkers_and_how_far_the_loudest_leads():
    """Every talker of a babble negative says a keyword; the manifest says which clips, and the loudest
    talker's lead over the rest lies where equal-level talkers given 0-6 dB less can put it."""
    split = toy_split_clips()
    names = [f"{p.parent.name}/{p.name}" for p in split.paths]
    clips, settings = negatives.derive_negatives(split.audio, names, split.label_ids, {"babble": 30},
                                                 np.random.default_rng(3))
    leads = []
    for source, entry in zip(clips.sources, settings):
        talkers = entry["talkers"]
        assert source == f"babble of {talkers}" and len(set(entry["clips"])) == talkers
        assert set(entry["clips"]) <= set(names) and entry["leader"] in entry["clips"]
        # The toy bursts are never shifted out of their clip: the lead is between the leader being only as
        # loud as each other talker and being 6 dB over all of them.
        low, high = -10 * np.log10(talkers - 1), 6 - 10 * np.log10(talkers - 1)
        assert low - 0.01 <= entry["leader_over_rest_db"] <= high + 0.01
        leads.append(entry["leader_over_rest_db"])
    assert np.ptp(leads) > 2  # the gains are drawn, not fixed
    again, settings_again = negatives.derive_negatives(split.audio, names, split.label_ids, {"babble": 30},
                                                       np.random.default_rng(3))
    np.testing.assert_array_equal(again.audio, clips.audio)
    assert settings_again == settings


def test_babble_of_words_overlaps_spoken_words_and_says_which():
    bursts = toy_split_clips(10)  # tone bursts standing for spoken non-keyword words
    words = negatives.GeneratedClips(bursts.audio, (UNKNOWN_LABEL,) * 10, ("tts_word",) * 10,
                                     tuple(f"word{k}|flite_kal|stretch=1" for k in range(10)))
    babble, settings = negatives.babble_of_words(words, 12, np.random.default_rng(4))
    assert babble.audio.shape == (12, 16000) and babble.audio.dtype == np.int16
    assert babble.classes == (UNKNOWN_LABEL,) * 12 and babble.kinds == ("babble_words",) * 12
    for clip, source, entry in zip(babble.audio, babble.sources, settings):
        talkers = entry["talkers"]
        assert 3 <= talkers <= 6 and source == f"babble of {talkers} words"
        assert len(set(entry["words"])) == talkers and set(entry["words"]) <= set(words.sources)
        # As loud as the loudest word in it, never clipped.
        loudest = max(np.abs(bursts.audio[words.sources.index(w)]).max() for w in entry["words"])
        assert abs(int(np.abs(clip).max()) - int(loudest)) <= 1
        low, high = -10 * np.log10(talkers - 1), 6 - 10 * np.log10(talkers - 1)
        assert low - 0.01 <= entry["leader_over_rest_db"] <= high + 0.01
    again, _ = negatives.babble_of_words(words, 12, np.random.default_rng(4))
    np.testing.assert_array_equal(again.audio, babble.audio)
    two, two_settings = negatives.babble_of_words(words.rows([0, 1]), 3, np.random.default_rng(4))
    assert len(two) == 3 and all(entry["talkers"] == 2 for entry in two_settings)  # as many words as there are
    with pytest.raises(ValueError, match="none"):
        negatives.babble_of_words(words.rows([]), 1, np.random.default_rng(4))
    assert "babble_words" in negatives.OPT_IN_KINDS and "babble_words" not in negatives.sizes_for("val", 1.0)


def test_derived_negatives_refuse_kinds_made_from_speech():
    split = toy_split_clips()
    names = [f"{p.parent.name}/{p.name}" for p in split.paths]
    for kind in negatives.SPEECH_MADE_KINDS:
        with pytest.raises(ValueError, match=f"not derived from a split's clips: {kind}"):
            negatives.derive_negatives(split.audio, names, split.label_ids, {kind: 2}, np.random.default_rng(0))


def test_tonal_negatives_are_training_only_and_tonal():
    """Tonal clips train the rejection of beeps and music; the evaluation negatives (and so the
    calibration and benchmark streams) keep the kinds they had."""
    assert "tonal" in negatives.DEFAULT_SIZES["train"] and negatives.sizes_for("train", 0.01)["tonal"] == 3
    assert all("tonal" not in negatives.sizes_for(split, 1.0) for split in ("val", "test"))
    split = toy_split_clips()
    names = [f"{p.parent.name}/{p.name}" for p in split.paths]
    clips, settings = negatives.derive_negatives(split.audio, names, split.label_ids, {"tonal": 40},
                                                 np.random.default_rng(1))
    assert set(clips.classes) == {negatives.SILENCE_LABEL} and len(clips.without_kinds(["tonal"])) == 0
    assert {entry["shape"] for entry in settings} == {"held", "pulsed", "struck"}
    assert {entry["motion"] for entry in settings} == {"steady", "glide", "warble"}
    for clip in clips.audio:  # the loudest 40 ms frame has its energy in a few narrow peaks (noise: ~30 %)
        frames = np.lib.stride_tricks.sliding_window_view(clip.astype(np.float64), 640)[::320]
        loudest = frames[np.argmax((frames ** 2).sum(axis=1))]
        spectrum = np.abs(np.fft.rfft(loudest * np.hanning(640))) ** 2
        assert np.sort(spectrum)[-24:].sum() > 0.9 * spectrum.sum()


def test_derived_negatives_refuse_too_few_clips():
    split = toy_split_clips(4)
    with pytest.raises(ValueError, match="at least 6"):
        negatives.derive_negatives(split.audio, ["a"] * 4, split.label_ids, {"babble": 1}, np.random.default_rng(0))


def test_generated_clips_select_and_count():
    audio = np.zeros((3, 16000), np.int16)
    clips = negatives.GeneratedClips(audio, ("_unknown_", "_silence_", "go"), ("half", "hum", "tts_keyword"),
                                     ("a", "b", "c"))
    assert len(clips.select(["half", "hum"])) == 2 and clips.select("hum").classes == ("_silence_",)
    assert clips.select_classes("go").kinds == ("tts_keyword",)
    assert len(negatives.concatenate([clips, clips])) == 6
    with pytest.raises(ValueError, match="one entry per clip"):
        negatives.GeneratedClips(audio, ("a",), ("b",), ("c",))


# -- the whole path, determinism and the cache --------------------------------

TOY_SCALE = 0.005  # 4 plain words, 1 hard negative, one clip of every other kind


@requires_tts
def test_toy_build_of_a_split_through_the_whole_path(tmp_path):
    clips = negatives.build_negatives("val", split_clips=toy_split_clips(), data_dir=tmp_path, seed=0,
                                      scale=TOY_SCALE)
    sizes = negatives.sizes_for("val", TOY_SCALE)
    counts = clips.counts()
    assert counts == sizes  # spare words replace those longer than a clip
    assert clips.audio.shape == (len(clips), 16000) and clips.audio.dtype == np.int16

    manifest = negatives.read_manifest("val", data_dir=tmp_path)
    assert manifest["speakers"] == ["rms"]
    assert manifest["synthesized"] == manifest["dropped_longer_than_clip"] + manifest["spares_unused"] + 5
    assert all(negatives.word_split(word) == "val" for word in manifest["words"])
    assert all(negatives.word_split(word, hard=True) == "val" for word in manifest["hard_words"])
    assert "flite" in manifest["request"]["engines"]["flite"] and "festival" not in manifest["request"]["engines"]
    assert len(manifest["clips"]) == len(clips) and manifest["num_clips"] == len(clips)
    spoken = clips.select(SPEECH_KINDS)
    for clip, entry in zip(spoken.audio, [c for c in manifest["clips"] if c["kind"] in SPEECH_KINDS]):
        assert entry["class"] == "_unknown_" and entry["settings"]["voice"] == "flite_rms"
        assert acoustics.peak_dbfs(clip) == pytest.approx(entry["settings"]["peak_dbfs"], abs=0.5)
        start, end = negatives.active_span(clip, relative_db=30.0)
        assert 0.1 < (end - start) / 16000 <= 1.0  # a word is really in it


@requires_tts
def test_split_derived_negatives_are_the_derived_part_of_the_cache(tmp_path):
    split_clips = toy_split_clips()
    cached = negatives.build_negatives("val", split_clips=split_clips, data_dir=tmp_path, seed=0, scale=TOY_SCALE)
    derived, settings = negatives.split_derived_negatives("val", split_clips, seed=0,
                                                          sizes=negatives.sizes_for("val", TOY_SCALE))
    rows = [k for k, kind in enumerate(cached.kinds) if kind not in SPEECH_KINDS]
    np.testing.assert_array_equal(derived.audio, cached.audio[rows])
    assert derived.kinds == tuple(cached.kinds[k] for k in rows)
    manifest = negatives.read_manifest("val", data_dir=tmp_path)
    assert [entry["settings"] for entry in manifest["clips"] if entry["kind"] not in SPEECH_KINDS] == settings
    with pytest.raises(ValueError):
        negatives.split_derived_negatives("dev", split_clips)


@requires_tts
def test_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(tmp_path):
    split = toy_split_clips()
    first = negatives.build_negatives("test", split_clips=split, data_dir=tmp_path / "a", seed=5, scale=TOY_SCALE)
    second = negatives.build_negatives("test", split_clips=split, data_dir=tmp_path / "b", seed=5, scale=TOY_SCALE)
    np.testing.assert_array_equal(first.audio, second.audio)
    assert first.sources == second.sources
    other = negatives.build_negatives("test", split_clips=split, data_dir=tmp_path / "c", seed=6, scale=TOY_SCALE)
    assert not np.array_equal(first.audio[:len(other)], other.audio[:len(first)])
    manifests = {"test": negatives.read_manifest("test", data_dir=tmp_path / "a")}
    negatives.build_negatives("val", split_clips=split, data_dir=tmp_path / "a", seed=5, scale=TOY_SCALE)
    manifests["val"] = negatives.read_manifest("val", data_dir=tmp_path / "a")
    overlaps = negatives.split_overlaps(manifests)
    assert set(overlaps) == {"val/test words", "val/test speakers"} and not any(overlaps.values())
    shared = {**manifests["test"], "words": manifests["test"]["words"] + manifests["val"]["words"][:1]}
    assert negatives.split_overlaps({"val": manifests["val"], "test": shared})["val/test words"] == \
        manifests["val"]["words"][:1]
    voices = {entry["settings"]["voice"] for entry in manifests["test"]["clips"] if entry["kind"] in SPEECH_KINDS}
    assert voices <= {voice.name for voice in negatives.VOICES["test"]}


@requires_tts
def test_cache_is_reused_and_rebuilt_when_the_request_or_the_audio_changes(tmp_path):
    split = toy_split_clips()
    npz_path, manifest_path = negatives.cache_paths("val", "negatives", tmp_path)
    first = negatives.build_negatives("val", split_clips=split, data_dir=tmp_path, scale=TOY_SCALE)
    stamp = manifest_path.stat().st_mtime_ns
    again = negatives.build_negatives("val", split_clips=split, data_dir=tmp_path, scale=TOY_SCALE)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert manifest_path.stat().st_mtime_ns == stamp  # reused, not rewritten

    changed_clips = toy_split_clips(seed=1)  # other input clips: the derived negatives must follow them
    rebuilt = negatives.build_negatives("val", split_clips=changed_clips, data_dir=tmp_path, scale=TOY_SCALE)
    assert manifest_path.stat().st_mtime_ns != stamp
    assert not np.array_equal(rebuilt.select("reversed").audio, first.select("reversed").audio)

    manifest = json.loads(manifest_path.read_text())
    manifest["audio_sha256"] = "0" * 64  # the stored audio no longer matches its checksum
    manifest_path.write_text(json.dumps(manifest))
    negatives.build_negatives("val", split_clips=changed_clips, data_dir=tmp_path, scale=TOY_SCALE)
    assert json.loads(manifest_path.read_text())["audio_sha256"] != "0" * 64


def test_two_runs_generating_the_same_cache_at_once_both_succeed(tmp_path):
    """Two trainings started together both find no cache and write it; neither may lose its file."""
    import threading

    both_generated = threading.Barrier(2)
    clips = negatives.GeneratedClips(np.arange(3 * 16000, dtype=np.int16).reshape(3, 16000),
                                     ("_unknown_",) * 3, ("hum",) * 3, ("a", "b", "c"))

    def generate():
        both_generated.wait(timeout=10)  # both write at the same moment
        return clips, [{}] * 3, {}

    request = {"voices": [{"speaker": "toy"}]}
    results, errors = [], []

    def run():
        try:
            results.append(negatives._cached("val", "negatives", request, generate, tmp_path, progress=False))
        except Exception as error:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 2
    npz_path, manifest_path = negatives.cache_paths("val", "negatives", tmp_path)
    assert sorted(path.name for path in npz_path.parent.iterdir()) == sorted([npz_path.name, manifest_path.name])
    umask = os.umask(0)
    os.umask(umask)
    for path in (npz_path, manifest_path):  # as readable as any file the process writes, not mkstemp's 0600
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    reused = negatives._cached("val", "negatives", request, lambda: pytest.fail("regenerated"), tmp_path, False)
    np.testing.assert_array_equal(reused.audio, clips.audio)


@requires_tts
def test_synthetic_keywords_are_the_keywords_by_the_split_voices(tmp_path):
    clips = negatives.synthetic_keywords("val", keywords=("go", "stop"), data_dir=tmp_path, clips_per_word=1)
    assert set(clips.classes) <= {"go", "stop"} and set(clips.kinds) == {"tts_keyword"}
    assert all(source.split("|")[0] == name and source.split("|")[1] == "flite_rms"
               for name, source in zip(clips.classes, clips.sources))
    manifest = negatives.read_manifest("val", "keywords", tmp_path)
    assert manifest["num_clips"] == len(LABELS) and manifest["counts"] == {"tts_keyword": len(LABELS)}
    assert sorted(entry["class"] for entry in manifest["clips"]) == sorted(LABELS)
    with pytest.raises(ValueError, match="unknown keyword"):
        negatives.synthetic_keywords("val", keywords=("maybe",), data_dir=tmp_path)


@requires_accented_voices
@pytest.mark.parametrize("voice", negatives.ACCENTED_VOICES["train"] + negatives.ACCENTED_VOICES["val"],
                         ids=lambda voice: voice.name)
def test_every_accented_voice_says_its_respelling_slower_when_stretched(voice):
    base, = negatives.draw_utterances(["go"], [voice], np.random.default_rng(0))
    assert base.text == "go" and base.spoken_text == voice.spelling("go") != "go"
    assert base.settings()["spelling"] == base.spoken_text
    assert base.source().startswith(f"go|{voice.name}|said={base.spoken_text}|")
    fast, slow = negatives.synthesize([negatives.Utterance(**{**base.__dict__, "duration_stretch": stretch})
                                       for stretch in (0.8, 1.3)])
    assert 0.15 < len(fast) / 16000 < 1.0 and len(slow) > 1.2 * len(fast)
    assert median_f0_hz(fast) > 140  # a woman's voice, unlike every English training voice


@requires_accented_voices
def test_accented_keywords_are_cached_apart_and_only_where_a_split_has_accented_voices(tmp_path):
    clips = negatives.synthetic_keywords("val", keywords=("go", "yes"), data_dir=tmp_path, clips_per_word=1,
                                         accented=True)
    assert sorted(clips.classes) == ["go", "yes"] and set(clips.kinds) == {"tts_keyword"}
    assert all(source.split("|")[0] == name and "|said=" in source and "suo_fi_lj" in source
               for name, source in zip(clips.classes, clips.sources))
    manifest = negatives.read_manifest("val", "keywords_accented", tmp_path)
    assert manifest["speakers"] == ["lj"] and manifest["num_clips"] == len(LABELS)
    assert not negatives.cache_paths("val", "keywords", tmp_path)[0].exists()
    with pytest.raises(ValueError, match="no accented voices"):
        negatives.synthetic_keywords("test", data_dir=tmp_path, accented=True)
    with pytest.raises(ValueError, match="natural register"):
        negatives.synthetic_keywords("train", data_dir=tmp_path, accented=True, register="raised")


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="split"):
        negatives.sizes_for("dev", 1.0)
    with pytest.raises(ValueError, match="scale"):
        negatives.sizes_for("val", 0.0)


def test_raised_register_lifts_the_pitch_range_and_leaves_the_other_draws_alone():
    voices = negatives.VOICES["train"]
    words = ["gopher", "town", "cup", "light"] * 10
    natural = negatives.draw_utterances(words, voices, np.random.default_rng(3))
    raised = negatives.draw_utterances(words, voices, np.random.default_rng(3), register="raised")
    low, high = negatives.RAISED_PITCH_FACTOR_RANGE
    for before, after in zip(natural, raised):
        assert before.speed_factor == 1.0 and "speed=" not in before.source()
        assert "speed_factor" not in before.settings()
        assert low <= after.pitch_factor <= high and before.pitch_factor < low  # every training voice is native
        assert 1.0 <= after.speed_factor <= negatives.RAISED_SPEED_FACTOR_RANGE[1]
        assert f"speed={after.speed_factor:.3f}" in after.source()
    # The speed-up is drawn after everything else of its word: the first word's voice, rate, place and
    # level are the natural register's (later words follow another stream of draws).
    first, first_raised = natural[0], raised[0]
    assert (first_raised.voice, first_raised.duration_stretch, first_raised.offset_fraction,
            first_raised.peak_dbfs) == (first.voice, first.duration_stretch, first.offset_fraction, first.peak_dbfs)
    with pytest.raises(ValueError, match="register"):
        negatives.draw_utterances(words, voices, np.random.default_rng(3), register="falsetto")


@requires_tts
def test_a_raised_word_is_higher_and_shorter():
    voice, = [voice for voice in negatives.VOICES["train"] if voice.name == "flite_kal"]
    base, = negatives.draw_utterances(["gopher"], [voice], np.random.default_rng(0))
    plain = negatives.Utterance(**{**base.__dict__, "pitch_factor": 1.0, "speed_factor": 1.0})
    raised = negatives.Utterance(**{**base.__dict__, "pitch_factor": 1.6, "speed_factor": 1.2})
    plain_word, raised_word = negatives.synthesize([plain, raised])
    assert median_f0_hz(raised_word) / median_f0_hz(plain_word) == pytest.approx(1.6 * 1.2, rel=0.1)
    assert len(raised_word) / len(plain_word) == pytest.approx(1 / 1.2, rel=0.1)


@requires_tts
def test_raised_keywords_and_words_are_cached_beside_the_natural_ones(tmp_path):
    keywords = negatives.synthetic_keywords("train", keywords=("go",), data_dir=tmp_path, clips_per_word=1,
                                            register="raised")
    assert keywords.classes == ("go",) and all("speed=" in source for source in keywords.sources)
    assert negatives.read_manifest("train", "keywords_raised", tmp_path)["request"]["register"] == "raised"
    assert not negatives.cache_paths("train", "keywords", tmp_path)[0].exists()
    with pytest.raises(ValueError, match="register"):
        negatives.synthetic_keywords("train", data_dir=tmp_path, register="falsetto")

    words = negatives.raised_words("train", data_dir=tmp_path, sizes={"tts_word": 2, "tts_hard": 1})
    assert words.counts() == {"tts_word_raised": 2, "tts_hard_raised": 1}
    assert set(words.classes) == {UNKNOWN_LABEL}
    spoken = [source.split("|")[0] for source in words.sources]
    assert all(negatives.word_split(word, hard=kind == "tts_hard_raised") == "train"
               for word, kind in zip(spoken, words.kinds))
    for bad in ({"tts_word": 2}, {"tts_word": 0, "tts_hard": 1}, {"tts_word": 2, "tts_hard": 1.5}):
        with pytest.raises(ValueError, match="sizes"):
            negatives.raised_words("train", data_dir=tmp_path, sizes=bad)


@requires_tts
def test_counts_of_their_own_for_some_kinds_leave_the_others_alone(tmp_path):
    scaled = negatives.build_negatives("train", split_clips=toy_split_clips(), data_dir=tmp_path / "a", seed=0,
                                       scale=TOY_SCALE)
    more = negatives.build_negatives("train", split_clips=toy_split_clips(), data_dir=tmp_path / "b", seed=0,
                                     scale=TOY_SCALE, sizes={"tonal": 3})
    assert more.counts() == {**scaled.counts(), "tonal": 3}
    # The tonal clips are made last, so every other clip is the same.
    others = [kind for kind in scaled.counts() if kind != "tonal"]
    np.testing.assert_array_equal(more.select(others).audio, scaled.select(others).audio)
    assert negatives.read_manifest("train", data_dir=tmp_path / "b")["request"]["sizes"]["tonal"] == 3
    # So are the babbles of words, made last from the spoken words of the same cache.
    words = negatives.build_negatives("train", split_clips=toy_split_clips(), data_dir=tmp_path / "d", seed=0,
                                      scale=TOY_SCALE, sizes={"babble_words": 4})
    assert words.counts() == {**scaled.counts(), "babble_words": 4}
    others = [kind for kind in scaled.counts() if kind != "babble_words"]
    np.testing.assert_array_equal(words.select(others).audio, scaled.select(others).audio)
    spoken = set(words.select("tts_word").sources)
    manifest = negatives.read_manifest("train", data_dir=tmp_path / "d")["clips"]
    assert all(set(entry["settings"]["words"]) <= spoken for entry in manifest if entry["kind"] == "babble_words")
    for bad in ({"tonal": 0}, {"chirps": 2}, {"tonal": 1.5}):
        with pytest.raises(ValueError, match="sizes"):
            negatives.build_negatives("train", split_clips=toy_split_clips(), data_dir=tmp_path / "c",
                                      scale=TOY_SCALE, sizes=bad)
