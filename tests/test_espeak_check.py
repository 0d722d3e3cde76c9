"""benchmarks.espeak_check: the independent check's voices stay out of training, its audio, its scoring
and its command line. Tests that speak are skipped, with the install line, where espeak-ng or flite
(whose lexicon checks homophones) is absent."""
import shutil

import numpy as np
import pytest

from benchmarks import espeak_check
from benchmarks.espeak_check import CheckScore, main, score_answers, voice_of
from test_benchmark_commands import bad_models, refusal
from train.kws import negatives
from train.kws.data import LABELS

MISSING = [program for program in ("espeak-ng", "flite", "t2p") if shutil.which(program) is None]
requires_espeak = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed: "
                                                            f"{negatives.ESPEAK_INSTALL_LINE}; "
                                                            f"{negatives.APT_INSTALL_LINE}")
ONE_VOICE = espeak_check.VOICES[:1]


def test_espeak_ng_speaks_for_the_check_only():
    assert all(voice.engine == "espeak-ng" for voice in espeak_check.VOICES)
    split_voices = [voice for voices in negatives.VOICES.values() for voice in voices]
    assert split_voices and all(voice.engine in ("flite", "festival") for voice in split_voices)
    assert not {voice.speaker for voice in espeak_check.VOICES} & {voice.speaker for voice in split_voices}


def test_scoring_by_hand():
    labels = ("down", "go", "left", "no", "right", "stop", "up", "yes", "_silence_", "_unknown_")
    result = score_answers(labels, keyword_answers=["go", "no", "_unknown_", "stop"],
                           keyword_classes=["go", "down", "stop", "stop"],
                           keyword_voices=["espeak_a", "espeak_a", "espeak_b", "espeak_b"],
                           word_answers=["_unknown_", "go", "_silence_"], word_kinds=["tts_word", "tts_word", "tts_hard"])
    assert result.by_word == {"go": (1, 1), "down": (0, 1), "stop": (1, 2)}
    assert result.by_voice == {"espeak_a": (1, 2), "espeak_b": (1, 2)}
    assert result.keyword_accuracy == 0.5
    assert result.worst("by_word") == ("down", 0.0) and result.worst("by_voice") == ("espeak_a", 0.5)
    assert result.rejected_by_kind == {"tts_word": (1, 2), "tts_hard": (1, 1)}


def test_a_subset_scores_its_own_words_and_the_others_only_when_it_can_answer_unknown():
    answers, classes, voices = ["go", "go", "_unknown_"], ["go", "stop", "yes"], ["v"] * 3
    closed = score_answers(("go", "stop"), answers[:2], classes[:2], voices[:2], ["go"], ["tts_word"])
    assert closed.by_word == {"go": (1, 1), "stop": (0, 1)} and closed.rejected_by_kind == {}
    closed_with_other = score_answers(("go", "stop"), answers, classes, voices)
    assert "yes" not in closed_with_other.by_word  # a closed go/stop cannot answer "yes" at all
    open_set = score_answers(("go", "stop", "_silence_", "_unknown_"), answers, classes, voices,
                             ["go"], ["tts_word"])
    assert open_set.by_word == {"go": (1, 1), "stop": (0, 1), "yes": (1, 1)}
    assert open_set.rejected_by_kind == {"tts_word": (0, 1)}
    with pytest.raises(ValueError, match="differ in length"):
        score_answers(("go",), ["go"], ["go", "go"], ["v"])
    with pytest.raises(ValueError, match="differ in length"):
        score_answers(("go", "_unknown_"), ["go"], ["go"], ["v"], ["go"], [])
    assert np.isnan(CheckScore().keyword_accuracy)


def test_listening_for_some_keywords_makes_the_others_unknown():
    from benchmarks.espeak_check import listened_answers

    model_keywords = ("down", "go", "stop", "yes")
    answers = ["go", "down", "_silence_", "stop", "yes", "_unknown_"]
    assert listened_answers(answers, model_keywords, ("go", "stop")) == [
        "go", "_unknown_", "_silence_", "stop", "_unknown_", "_unknown_"]
    scored = score_answers(("go", "stop", "_unknown_"), listened_answers(answers[:4], model_keywords, ("go", "stop")),
                           ["go", "down", "yes", "go"], ["v"] * 4)
    assert scored.by_word == {"go": (1, 2), "down": (1, 1), "yes": (0, 1)}  # "_silence_" for "yes" is not unknown


def test_voice_of_reads_the_source():
    assert voice_of("stop|espeak_en-gb+m3|stretch=1.000|pitch=1.000") == "espeak_en-gb+m3"
    with pytest.raises(ValueError, match="no voice"):
        voice_of("stop")


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match="clips_per_word"):
        espeak_check.espeak_keywords(data_dir=tmp_path, clips_per_word=0)
    with pytest.raises(ValueError, match="hard_count"):
        espeak_check.espeak_words(data_dir=tmp_path, count=1, hard_count=-1)
    with pytest.raises(ValueError, match="at least one word"):
        espeak_check.espeak_words(data_dir=tmp_path, count=0, hard_count=0)


def test_a_missing_espeak_ng_names_its_package_and_an_unknown_engine_is_refused(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(negatives.shutil, "which", lambda name: None if name == "espeak-ng" else real_which(name))
    with pytest.raises(RuntimeError) as error:
        negatives.synthesize(negatives.draw_utterances(["go"], ONE_VOICE, np.random.default_rng(0)))
    assert negatives.ESPEAK_INSTALL_LINE in str(error.value)
    made_up = negatives.Voice("sapi_anna", "sapi", "anna", "anna", True, 200.0)
    with pytest.raises(ValueError, match="unknown speech engine"):
        negatives.synthesize(negatives.draw_utterances(["go"], [made_up], np.random.default_rng(0)))


@requires_espeak
def test_keywords_and_words_are_spoken_cached_and_reused(tmp_path):
    keywords = espeak_check.espeak_keywords(data_dir=tmp_path, clips_per_word=1, voices=ONE_VOICE)
    assert sorted(keywords.classes) == sorted(LABELS) and set(keywords.kinds) == {"espeak_keyword"}
    assert keywords.audio.shape == (len(LABELS), 16000) and keywords.audio.dtype == np.int16
    assert all(np.abs(clip.astype(np.int32)).max() > 300 for clip in keywords.audio)  # a word, not silence
    assert {voice_of(source) for source in keywords.sources} == {ONE_VOICE[0].name}
    manifest = negatives.read_manifest(espeak_check.CHECK_FOLDER, "keywords", tmp_path)
    assert "espeak-ng" in manifest["request"]["engines"] and manifest["speakers"] == [ONE_VOICE[0].speaker]

    words = espeak_check.espeak_words(data_dir=tmp_path, count=2, hard_count=1, voices=ONE_VOICE)
    assert words.counts() == {"tts_word": 2, "tts_hard": 1} and set(words.classes) == {"_unknown_"}
    spoken = negatives.read_manifest(espeak_check.CHECK_FOLDER, "words", tmp_path)["words"]
    assert all(negatives.word_split(word) == "test" or word in negatives.hard_negative_words() for word in spoken)
    assert not set(spoken) & set(LABELS)

    manifest_path = negatives.cache_paths(espeak_check.CHECK_FOLDER, "keywords", tmp_path)[1]
    stamp = manifest_path.stat().st_mtime_ns
    again = espeak_check.espeak_keywords(data_dir=tmp_path, clips_per_word=1, voices=ONE_VOICE)
    np.testing.assert_array_equal(again.audio, keywords.audio)
    assert manifest_path.stat().st_mtime_ns == stamp  # reused, not spoken again


@requires_espeak
def test_the_command_scores_a_model_and_writes_its_report(tmp_path, tmp_path_factory, capsys):
    from kws_toy import build_toy_model
    from pi_runtime.sidecar import KwsSpec, read_kws_spec, write_sidecar

    toy = build_toy_model(tmp_path_factory.getbasetemp() / "toy_kws")
    model = tmp_path / "go_stop.tflite"  # the toy's three outputs read as go, stop and _unknown_
    model.write_bytes(toy.read_bytes())
    write_sidecar(model, KwsSpec(input=read_kws_spec(toy).input, labels=("go", "stop", "_unknown_"),
                                 output_kind="probabilities").to_sidecar(training={"what": "test"}))
    report = tmp_path / "check.md"
    assert main(["--model", str(model), "--data-dir", str(tmp_path / "data"), "--clips-per-word", "1",
                 "--words", "2", "--hard-words", "0", "--markdown", str(report)]) == 0
    text = report.read_text()
    assert "| go_stop.tflite | " in text and f"% of {len(LABELS)} |" in text  # go, stop and six as _unknown_
    assert "must not be used to choose" in text and "--clips-per-word 1" in text

    # Listened to for "go" alone: its "stop" clip must now be answered _unknown_, and the report says so.
    assert main(["--model", str(model), "--data-dir", str(tmp_path / "data"), "--clips-per-word", "1",
                 "--words", "2", "--hard-words", "0", "--keywords", "go", "--markdown", str(report)]) == 0
    text = report.read_text()
    assert "listened to for go only" in text and "| go_stop.tflite | " in text and f"% of {len(LABELS)} |" in text
    assert main(["--model", str(model), "--keywords", "go,yes"]) == 2
    assert "'yes': a model can listen only for its own keywords" in capsys.readouterr().err

    assert main(["--model", str(tmp_path / "absent.tflite")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_help_names_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "never choose a model" in capsys.readouterr().out


def test_bad_models_and_counts_are_refused_before_any_audio_is_made(tmp_path, capsys):
    data = tmp_path / "data"
    for path, message in bad_models(tmp_path / "models").values():
        assert message in refusal(main, ["--model", str(path), "--data-dir", str(data)], capsys)
    for option, value in (("--clips-per-word", "0"), ("--words", "-1"), ("--hard-words", "-1")):
        assert option in refusal(main, [option, value, "--data-dir", str(data)], capsys)
    assert not data.exists()
