"""pi_runtime.tune and pi_runtime.replay with a delivered model, without TensorFlow: these run on the
device too (``python -m tests.cross_arch``)."""
import io
import json
from pathlib import Path

import numpy as np
import pytest

from pi_runtime import listen, tune
from pi_runtime.kws_pipeline import DetectorConfig, KeywordSpotter
from pi_runtime.model import load_model
from pi_runtime.replay import replay, replay_thresholds
from pi_runtime.sidecar import read_sidecar
from pi_runtime.wav import read_wav, write_wav

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL = REPO_ROOT / "models" / "kws" / "kws_live_c.tflite.zlib"


@pytest.fixture(scope="module")
def room_wav(tmp_path_factory):
    """70 s at 48 kHz: the example recording's words again and again at other levels over faint noise (a
    room where the listener fires now and then: the mechanics, not a false-alarm figure)."""
    samples, rate_hz = read_wav(REPO_ROOT / "examples" / "keywords.wav")
    rng = np.random.default_rng(0)
    pieces = [samples.astype(np.float64) * 10 ** (rng.uniform(-20, 0) / 20) for _ in range(7)]
    audio = np.concatenate(pieces) + rng.normal(scale=30.0, size=7 * samples.size)
    path = tmp_path_factory.mktemp("room") / "room.wav"
    at_48k = np.repeat(audio, 3)  # 48 kHz: tune resamples as listen does
    write_wav(path, np.clip(np.round(at_48k), -32768, 32767).astype(np.int16), 3 * rate_hz)
    return path


def _tune(argv):
    out, err = io.StringIO(), io.StringIO()
    return tune.main(argv, out=out, err=err), out.getvalue(), err.getvalue()


def _listen_count(wav, threshold):
    out = io.StringIO()
    assert listen.main(["--model", str(MODEL), "--input", str(wav), "--threshold", repr(threshold), "--json"],
                       out=out, err=io.StringIO()) == 0
    return len(out.getvalue().splitlines())


def test_tune_counts_what_listen_fires_and_reads_the_cost_from_the_delivered_sidecar(room_wav):
    status, out, _ = _tune([str(room_wav), "--model", str(MODEL), "--json", "--target-false-alarms-per-hour", "1e9"])
    rows = json.loads(out)["rows"]
    counts = [row["false_alarms"] for row in rows]
    assert status == 0 and counts[0] > counts[-1] >= 0 and counts[0] > 0
    # The fewest false alarms of the grid as the target, computed as tune does (the rows' rates are rounded).
    target = min(counts) * 3600.0 / json.loads(out)["seconds"]
    result = json.loads(_tune([str(room_wav), "--model", str(MODEL), "--json", "--target-false-alarms-per-hour",
                               repr(target)])[1])
    index = [row["threshold"] for row in rows].index(result["recommended_threshold"])
    assert _listen_count(room_wav, rows[0]["threshold"]) == counts[0]
    assert _listen_count(room_wav, result["recommended_threshold"]) == counts[index]
    measured = read_sidecar(MODEL)["detector"]["calibration"]["measured"]
    assert result["validation_keywords_detected_percent_in_use"] == round(measured["keywords_detected_percent"], 1)
    curve = measured["curve"]
    at = curve["thresholds"].index(result["recommended_threshold"])
    assert result["validation_keywords_detected_percent_recommended"] == round(curve["keywords_detected_percent"][at], 1)


def test_replaying_a_grid_equals_replaying_each_threshold(room_wav):
    model = load_model(MODEL, require_sidecar=True)
    config = DetectorConfig.from_sidecar(model.spec)
    decisions = []
    samples, rate_hz = read_wav(room_wav)
    spotter = KeywordSpotter(model, input_rate_hz=rate_hz, config=config, on_decision=decisions.append)
    live = spotter.push(samples) + spotter.flush()
    thresholds = [config.threshold, 0.6, 0.8, 0.95]
    at_once = replay_thresholds(decisions, spotter.labels, config, thresholds,
                                window_duration_s=spotter.policy.window_duration_s)
    assert at_once[0] == live
    for threshold, detections in zip(thresholds, at_once):
        assert detections == replay(decisions, spotter.labels, config.replace(threshold=threshold),
                                    window_duration_s=spotter.policy.window_duration_s)
