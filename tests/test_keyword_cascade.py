"""The go/stop cascade of benchmarks.keyword_cascade: a gate's summed probabilities, a specialist's choice."""
import numpy as np
import pytest

from benchmarks.keyword_cascade import cascade_answers, main, score

GATE_LABELS = ("down", "go", "no", "stop")
GATE = np.array([[0.05, 0.60, 0.30, 0.05],   # go and stop sum to 0.65
                 [0.10, 0.10, 0.70, 0.10],   # 0.20: exactly at a threshold of 0.2
                 [0.90, 0.04, 0.05, 0.01],   # 0.05
                 [0.00, 0.10, 0.00, 0.90]])  # 1.00
SPECIALIST = np.array([[2.0, -1.0], [0.0, 3.0], [5.0, 0.0], [4.0, 1.0]])  # logits of go, stop


def test_the_gate_decides_whether_the_specialist_decides_which():
    answers = cascade_answers(GATE, GATE_LABELS, SPECIALIST, ("go", "stop"), threshold=0.2)
    # The specialist's answer stands where the gate's go + stop reach 0.2, even against the gate's own top word.
    assert list(answers) == ["go", "stop", "_unknown_", "go"]
    assert list(cascade_answers(GATE, GATE_LABELS, SPECIALIST, ("go", "stop"), threshold=0.5)) == [
        "go", "_unknown_", "_unknown_", "go"]
    assert list(cascade_answers(GATE, GATE_LABELS, SPECIALIST, ("go", "stop"), threshold=0.0)) == [
        "go", "stop", "go", "go"]


def test_the_cascade_refuses_what_it_cannot_answer():
    with pytest.raises(ValueError, match="no output for left"):
        cascade_answers(GATE, GATE_LABELS, SPECIALIST, ("go", "left"), threshold=0.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        cascade_answers(GATE, GATE_LABELS, SPECIALIST, ("go", "stop"), threshold=1.5)
    with pytest.raises(ValueError, match="answered 4 clips"):
        cascade_answers(GATE, GATE_LABELS, SPECIALIST[:3], ("go", "stop"), threshold=0.2)


def test_score_counts_keywords_right_and_others_rejected():
    truth = np.array(["go", "stop", "no", "down", "go"])
    answers = np.array(["go", "go", "_unknown_", "stop", "_unknown_"])
    assert score(answers, truth, ("go", "stop")) == (1, 3, 1, 2)


def test_cli_names_a_missing_model(tmp_path, capsys):
    assert main(["--gate", str(tmp_path / "nothing.tflite")]) == 2
    assert "nothing.tflite: no such model file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--split", "train"])
