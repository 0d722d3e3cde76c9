"""benchmarks.detector_variants: the posterior transforms it compares, and its command line."""
import numpy as np
import pytest

import itertools

from benchmarks.detector_variants import (build_parser, counts_per_keyword, gated, keywords_to_leader, main,
                                         pool_posteriors, scale_labels, thresholds_per_keyword, verified,
                                         where_the_mass_goes)
from pi_runtime.kws_pipeline import DetectorConfig
from kws_toy import random_decisions
from test_benchmark_commands import KWS_MODELS, bad_models, refusal
from pi_runtime.replay import replay_thresholds

LABELS = ["go", "stop", "_silence_", "_unknown_"]


@pytest.mark.parametrize("windows", [1, 3, 5])
def test_mean_pooling_replayed_in_place_of_the_smoothing_gives_the_policys_own_detections(windows):
    # The comparison is only fair if its "mean n" row is exactly the delivered policy with smoothing n.
    decisions = random_decisions(LABELS, 600, seed=windows)
    config = DetectorConfig(smoothing_windows=windows, refractory_ms=300, min_level_dbfs=-55.0)
    probabilities = np.stack([d.probabilities for d in decisions]).astype(np.float64)
    levels = np.array([d.level_dbfs for d in decisions])
    pooled = pool_posteriors(gated(probabilities, levels, config.min_level_dbfs), windows)
    thresholds = [0.3, 0.55, 0.8]
    own = replay_thresholds(decisions, LABELS, config, thresholds)
    replayed = replay_thresholds(decisions, LABELS, config.replace(smoothing_windows=1), thresholds, pooled=pooled)
    for expected, got in zip(own, replayed):
        assert expected and [(d.label, d.time_s) for d in got] == [(d.label, d.time_s) for d in expected]
        assert [d.score for d in got] == pytest.approx([d.score for d in expected], abs=1e-9)
    with pytest.raises(ValueError, match="pooled must be"):
        replay_thresholds(decisions, LABELS, config, thresholds, pooled=pooled[1:])


def test_pooling_by_hand():
    probabilities = np.array([[0.8, 0.2], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    assert pool_posteriors(probabilities, 2) == pytest.approx(np.array([[0.8, 0.2], [0.5, 0.5], [0.4, 0.6], [0.55, 0.45]]))
    # top-1 of 3 is the running maximum; top-2 of 3 the mean of the two largest held
    assert pool_posteriors(probabilities, 3, "top", 1) == pytest.approx(
        np.array([[0.8, 0.2], [0.8, 0.8], [0.8, 0.8], [0.6, 0.8]]))
    assert pool_posteriors(probabilities, 3, "top", 2) == pytest.approx(
        np.array([[0.8, 0.2], [0.5, 0.5], [0.7, 0.6], [0.55, 0.65]]))
    # top-n of n is the mean; the geometric mean of equal values is that value
    assert pool_posteriors(probabilities, 3, "top", 3) == pytest.approx(pool_posteriors(probabilities, 3))
    assert pool_posteriors(np.full((4, 2), 0.3), 3, "geometric") == pytest.approx(np.full((4, 2), 0.3))
    assert pool_posteriors(probabilities, 2, "geometric")[1] == pytest.approx([0.4, 0.4])


def test_pooling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="windows"):
        pool_posteriors(np.ones(3), 2)
    with pytest.raises(ValueError, match="how"):
        pool_posteriors(np.ones((3, 2)), 2, "median")
    with pytest.raises(ValueError, match="top_k"):
        pool_posteriors(np.ones((3, 2)), 2, "top", 3)


def test_thresholds_per_keyword_are_the_best_within_the_budget():
    """Against every combination, on random counts that fall as the threshold rises."""
    rng = np.random.default_rng(0)
    for trial in range(30):
        detected = np.sort(rng.integers(0, 20, size=(3, 4)), axis=1)[:, ::-1]
        false_alarms = np.sort(rng.integers(0, 9, size=(3, 4)), axis=1)[:, ::-1]
        budget = int(rng.integers(false_alarms[:, -1].sum(), false_alarms[:, 0].sum() + 1))
        columns = thresholds_per_keyword(detected, false_alarms, budget)
        spent = sum(false_alarms[row, column] for row, column in enumerate(columns))
        found = sum(detected[row, column] for row, column in enumerate(columns))
        assert spent <= budget
        assert found == max(sum(detected[row, c] for row, c in enumerate(combo))
                            for combo in itertools.product(range(4), repeat=3)
                            if sum(false_alarms[row, c] for row, c in enumerate(combo)) <= budget)
    # By hand: the second keyword's lower threshold buys 5 detections for 2 false alarms, the first's 1 for 2.
    assert thresholds_per_keyword(np.array([[11, 10], [15, 10]]), np.array([[2, 0], [2, 0]]), 2) == [1, 0]
    assert thresholds_per_keyword(np.array([[10, 10]]), np.array([[1, 0]]), 5) == [1]  # a tie: the higher one
    with pytest.raises(ValueError, match="within 1"):
        thresholds_per_keyword(np.array([[3, 2]]), np.array([[4, 2]]), 1)
    with pytest.raises(ValueError, match="one shape"):
        thresholds_per_keyword(np.ones((2, 3)), np.ones((2, 2)), 1)


def test_counts_per_keyword_split_a_replay_by_label_and_time():
    from pi_runtime.kws_pipeline import Detection
    from train.kws.streams import Event, LabelledStream

    events = (Event(1.0, 2.0, "go", "speech_commands", "a", "clean", -10.0),
              Event(5.0, 6.0, "stop", "speech_commands", "b", "clean", -10.0),
              Event(8.0, 9.0, "dog", "tts_word", "c", "clean", -10.0))
    stream = LabelledStream(audio=np.zeros(16000 * 10, np.float32), sample_rate_hz=16000, events=events,
                            description="hand-made")
    detection = lambda label, t: Detection(label=label, score=0.9, time_s=t, window_start_s=t - 1.0)
    replays = [[detection("go", 1.8), detection("go", 8.9), detection("stop", 5.7)],  # a low threshold
               [detection("stop", 5.7)]]                                              # a high one
    detected, false_alarms = counts_per_keyword(replays, stream, ("go", "stop"), 0.0, 10.0)
    assert detected.tolist() == [[1, 0], [1, 1]] and false_alarms.tolist() == [[1, 0], [0, 0]]
    detected, false_alarms = counts_per_keyword(replays, stream, ("go", "stop"), 5.0, 10.0)
    assert detected.tolist() == [[0, 0], [1, 1]] and false_alarms.tolist() == [[1, 0], [0, 0]]


def test_scaling_and_verifying_posteriors():
    probabilities = np.array([[0.2, 0.2, 0.1, 0.5]])
    scaled = scale_labels(probabilities, LABELS, {"_unknown_": 0.5, "_silence_": 0.0})
    assert scaled.sum() == pytest.approx(1.0) and scaled[0, 2] == 0.0
    assert scaled[0] == pytest.approx(np.array([0.2, 0.2, 0.0, 0.25]) / 0.65)
    verifier = np.array([[0.5, 0.1] + [0.05] * 6])
    verifier_labels = ["go", "stop", "down", "left", "no", "right", "up", "yes"]
    fused = verified(probabilities, LABELS, verifier, verifier_labels, power=1.0)
    assert fused[0] == pytest.approx([0.1, 0.02, 0.1, 0.5])  # rejection classes untouched
    assert verified(probabilities, LABELS, verifier, verifier_labels, power=0.0) == pytest.approx(probabilities)


def test_giving_the_keyword_mass_to_the_leader():
    probabilities = np.array([[0.2, 0.2, 0.1, 0.5], [0.6, 0.3, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0]])
    led = keywords_to_leader(probabilities, LABELS, ("go", "stop"))
    assert led[0] == pytest.approx([0.4, 0.0, 0.1, 0.5])     # a tie goes to the first keyword
    assert led[1] == pytest.approx([0.9, 0.0, 0.1, 0.0])
    assert led[2].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert probabilities[0].tolist() == [0.2, 0.2, 0.1, 0.5]  # the input is left alone


def test_where_the_mass_goes_in_the_window_that_holds_each_clean_keyword():
    from pi_runtime.kws_pipeline import Decision
    from train.kws.streams import KEYWORD_CLIP_KIND, Event, LabelledStream

    events = (Event(1.0, 2.0, "go", KEYWORD_CLIP_KIND), Event(4.0, 5.0, "stop", KEYWORD_CLIP_KIND),
              Event(7.0, 8.0, "go", KEYWORD_CLIP_KIND, condition="babble 10 dB"),  # not clean: left out
              Event(9.0, 10.0, "_unknown_", "tts_word"))
    stream = LabelledStream(np.zeros(12 * 16000, np.float32), events, "hand-made")
    decisions = [Decision(t, -20.0, np.array(p)) for t, p in (
        (1.9, [0.9, 0.0, 0.0, 0.1]), (2.0, [0.6, 0.3, 0.0, 0.1]),   # the window ending at 2.0 s holds "go"
        (5.1, [0.7, 0.2, 0.1, 0.0]),                                # "stop" taken for "go"
        (8.0, [0.0, 0.0, 0.0, 1.0]))]
    mass = where_the_mass_goes(decisions, LABELS, ("go", "stop"), stream)
    assert mass["windows"] == 2
    assert mass["right"] == pytest.approx((0.6 + 0.2) / 2) and mass["other keywords"] == pytest.approx((0.3 + 0.7) / 2)
    assert mass["other labels"] == pytest.approx((0.1 + 0.1) / 2)
    assert (mass["leads"], mass["reaches 0.5"], mass["reaches 0.8"]) == (0.5, 0.5, 0.0)
    with pytest.raises(ValueError, match="no keyword clip without a background"):
        where_the_mass_goes(decisions, LABELS, ("go", "stop"), LabelledStream(stream.audio, events[2:], "none"))


def test_command_line_has_help_and_names_a_missing_model(tmp_path, capsys):
    assert "--verifier" in build_parser().format_help()
    assert main([str(tmp_path / "absent.tflite")]) == 2
    assert "absent.tflite" in capsys.readouterr().err


def test_command_line_refuses_bad_models_and_targets(tmp_path, capsys):
    model = str(KWS_MODELS / "kws_live_c.tflite.zlib")
    for path, message in bad_models(tmp_path).values():
        assert message in refusal(main, [str(path)], capsys)
        assert message in refusal(main, [model, "--verifier", str(path)], capsys)
    for target in ("-1", "inf", "nan"):
        line = refusal(main, [model, "--target-false-alarms-per-hour", target], capsys)
        assert "--target-false-alarms-per-hour: expected a finite number >= 0" in line


def test_the_energy_range_of_a_word_between_pauses_is_wide_and_of_steady_noise_narrow():
    from benchmarks.detector_variants import energy_range_db

    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.1, size=3 * 16000)
    word = np.concatenate([np.zeros(16000), 0.3 * np.sin(np.arange(8000) * 0.2), np.zeros(24000)])
    word += rng.normal(scale=0.001, size=word.size)  # a faint floor 40 dB under the word
    ranges = energy_range_db(np.concatenate([noise, word]), 16000, [2.0, 4.8])
    assert ranges[0] < 3.0 and ranges[1] > 30.0
    # By hand: ten loud frames of ten, then a window half loud, half 20 dB quieter.
    steps = np.concatenate([np.full(320 * 50, 0.1), np.full(320 * 25, 0.01), np.full(320 * 25, 0.1)])
    assert energy_range_db(steps, 16000, [1.0, 2.0]) == pytest.approx([0.0, 20.0])
