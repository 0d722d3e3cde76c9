"""benchmarks.detector_variants: the posterior transforms it compares, and its command line."""
import numpy as np
import pytest

from benchmarks.detector_variants import build_parser, gated, main, pool_posteriors, scale_labels, verified
from pi_runtime.kws_pipeline import DetectorConfig
from kws_toy import random_decisions
from train.kws.streams import replay_thresholds

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


def test_command_line_has_help_and_names_a_missing_model(tmp_path, capsys):
    assert "--verifier" in build_parser().format_help()
    assert main([str(tmp_path / "absent.tflite")]) == 2
    assert "absent.tflite" in capsys.readouterr().err
