"""Keyword spotting on a long stream through the live pipeline, as fast as possible.

The stream: every clip of the course's test split (800 one-second clips, about
half a minute of speech per word), in a shuffled order, separated by gaps of
1-2 s that are either digital silence or low-level white noise (-65 to -40
dBFS, partly above the energy gate), resampled to 48 kHz like a USB microphone.
The clip start times are known, so each detection can be checked.

Through the listen pipeline: 10 ms blocks written into the native AudioRing
(as the audio callback does), read back one hop at a time by the consumer and
pushed into :class:`pi_runtime.kws_pipeline.KeywordSpotter`.

Reported per model:

* detection rate: clips whose word was detected, with the right label, while
  the clip was in the window (window end between 0.1 s after the clip start
  and 0.8 s after its end);
* substitutions: detections in that span with a wrong label;
* false alarms per hour: detections outside every clip's span, and repeats;
* detection delay: window end minus clip end (median, 90th percentile);
* real-time factor (wall time / audio time) and CPU time per second of audio.

Then the stored posteriors are replayed through the detection policy with other
thresholds and smoothing lengths (same windows, no model runs), to show the
trade-off between detection rate and false alarms.

    TINYML_DATA_DIR=/path python -m benchmarks.streaming [--model models/kws/kws_a.tflite.zlib]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from native.resample import ratio_for, resample_poly
from native.ring import AudioRing
from pi_runtime.kws_pipeline import Decision, Detection, DetectionPolicy, DetectorConfig, KeywordSpotter
from pi_runtime.model import load_model
from pi_runtime.wav import read_wav

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIP_RATE_HZ = 16000
# A detection belongs to a clip when its window end lies in [start + EARLY_S, start + 1 s + LATE_S].
EARLY_S, LATE_S = 0.1, 0.8


@dataclass
class Stream:
    audio_16k: np.ndarray          # float32
    starts_s: np.ndarray           # clip start times
    labels: List[str]
    noise_gaps: int

    @property
    def duration_s(self) -> float:
        return self.audio_16k.size / CLIP_RATE_HZ


def build_stream(clip_paths: Sequence[Path], *, seed: int, gap_s: Tuple[float, float] = (1.0, 2.0),
                 noise_dbfs: Tuple[float, float] = (-65.0, -40.0)) -> Stream:
    """Clips in shuffled order with silent or noisy gaps; float32 at 16 kHz."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clip_paths))
    pieces, starts, labels, position, noise_gaps = [], [], [], 0, 0
    for index in order:
        gap = int(rng.uniform(*gap_s) * CLIP_RATE_HZ)
        if rng.random() < 0.5:
            level = 10 ** (rng.uniform(*noise_dbfs) / 20)
            pieces.append(rng.normal(scale=level, size=gap).astype(np.float32))
            noise_gaps += 1
        else:
            pieces.append(np.zeros(gap, np.float32))
        position += gap
        samples, rate_hz = read_wav(clip_paths[index])
        if rate_hz != CLIP_RATE_HZ:
            raise ValueError(f"{clip_paths[index]}: {rate_hz} Hz, expected {CLIP_RATE_HZ}")
        clip = np.zeros(CLIP_RATE_HZ, np.float32)  # padded to one second, as in training
        clip[:samples.size] = samples[:CLIP_RATE_HZ] / 32768.0
        pieces.append(clip)
        starts.append(position / CLIP_RATE_HZ)
        labels.append(Path(clip_paths[index]).parent.name)
        position += CLIP_RATE_HZ
    pieces.append(np.zeros(2 * CLIP_RATE_HZ, np.float32))
    return Stream(np.concatenate(pieces), np.array(starts), labels, noise_gaps)


@dataclass
class Score:
    hits: int
    clips: int
    substitutions: int
    false_alarms: int
    delays_s: np.ndarray

    def false_alarms_per_hour(self, duration_s: float) -> float:
        return self.false_alarms * 3600.0 / duration_s


def score(detections: Sequence[Detection], stream: Stream) -> Score:
    """Match detections to clips (see the module docstring)."""
    found = np.zeros(len(stream.labels), bool)
    substitutions = false_alarms = 0
    delays = []
    for detection in detections:
        # The latest clip starting early enough for this window end.
        index = int(np.searchsorted(stream.starts_s, detection.time_s - EARLY_S, side="right")) - 1
        if index < 0 or detection.time_s > stream.starts_s[index] + 1.0 + LATE_S:
            false_alarms += 1
        elif detection.label != stream.labels[index]:
            substitutions += 1
        elif found[index]:
            false_alarms += 1  # the same word reported twice
        else:
            found[index] = True
            delays.append(detection.time_s - (stream.starts_s[index] + 1.0))
    return Score(int(found.sum()), len(stream.labels), substitutions, false_alarms, np.array(delays))


def replay(decisions: Sequence[Decision], labels: Sequence[str], config: DetectorConfig) -> List[Detection]:
    """Detections the policy would make with ``config`` on stored per-window posteriors."""
    policy = DetectionPolicy(labels, config, window_duration_s=1.0)
    detections = []
    for decision in decisions:
        probabilities = None if policy.is_gated(decision.level_dbfs) else decision.probabilities
        detection = policy.update(probabilities, decision.time_s)
        if detection is not None:
            detections.append(detection)
    return detections


def run_stream(model_path: Path, audio: np.ndarray, input_rate_hz: int, config: DetectorConfig,
               block_ms: float = 10.0) -> Tuple[List[Detection], List[Decision], float, float, int]:
    """The listen pipeline on ``audio``: ring buffer -> spotter. Returns detections, decisions,
    wall seconds, CPU seconds and ring overruns."""
    model = load_model(model_path)
    decisions: List[Decision] = []
    spotter = KeywordSpotter(model, input_rate_hz=input_rate_hz, config=config, on_decision=decisions.append)
    ring = AudioRing(2 * input_rate_hz)
    block = int(input_rate_hz * block_ms / 1000)
    hop = int(round(spotter.hop_s * input_rate_hz))
    detections: List[Detection] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, audio.size, block):
        ring.write(audio[start:start + block])       # the audio callback
        while ring.available >= hop:                  # the consumer
            detections += spotter.push(ring.read(hop))
    detections += spotter.push(ring.read(ring.available))
    return detections, decisions, time.perf_counter() - wall, time.process_time() - cpu, ring.overrun_samples


def delivered_models() -> List[Path]:
    folder = REPO_ROOT / "models" / "kws"
    return sorted(p for p in folder.glob("*.tflite*") if p.name.endswith((".tflite", ".tflite.zlib")))


def test_split_clips(data_dir: Path) -> List[Path]:
    lines = (REPO_ROOT / "train" / "splits" / "kws_test_split.txt").read_text().split()
    return [data_dir / line.removeprefix("./data/") for line in lines]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Detection rate, false alarms, delay and speed of live keyword "
                                                 "spotting on a long stream of test-split clips.")
    parser.add_argument("--model", action="append", type=Path,
                        help="model(s) to run (default: every model in models/kws/)")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("TINYML_DATA_DIR") or Path.home() / ".cache" / "tinyml-pi"),
                        help="folder holding mini_speech_commands/ (default $TINYML_DATA_DIR)")
    parser.add_argument("--input-rate", type=int, default=48000, help="rate of the stream, Hz (default 48000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order, gaps and noise")
    parser.add_argument("--hop-ms", type=float, default=DetectorConfig.hop_ms)
    parser.add_argument("--threshold", type=float, default=DetectorConfig.threshold)
    parser.add_argument("--smoothing-windows", type=int, default=DetectorConfig.smoothing_windows)
    parser.add_argument("--refractory-ms", type=float, default=DetectorConfig.refractory_ms)
    parser.add_argument("--min-level-dbfs", type=float, default=DetectorConfig.min_level_dbfs)
    args = parser.parse_args(argv)

    models = args.model or delivered_models()
    if not models:
        print("no model given and none delivered in models/kws/", file=sys.stderr)
        return 2
    clips = test_split_clips(args.data_dir)
    if not clips[0].is_file():
        print(f"test-split clips not found under {args.data_dir} (set TINYML_DATA_DIR)", file=sys.stderr)
        return 2
    config = DetectorConfig(hop_ms=args.hop_ms, threshold=args.threshold, smoothing_windows=args.smoothing_windows,
                            refractory_ms=args.refractory_ms, min_level_dbfs=args.min_level_dbfs)

    try:
        from importlib.metadata import version

        litert = version("ai-edge-litert")
    except Exception:  # not installed as a distribution (tflite_runtime or tf.lite fallback)
        litert = "-"
    print(f"python {platform.python_version()}, numpy {np.__version__}, ai-edge-litert {litert}, "
          f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs")
    print(f"config: {config}")
    stream = build_stream(clips, seed=args.seed)
    up, down = ratio_for(CLIP_RATE_HZ, args.input_rate)
    audio = resample_poly(stream.audio_16k, up, down) if up != down else stream.audio_16k
    print(f"stream: {len(stream.labels)} test-split clips, {stream.duration_s / 60:.1f} min at {args.input_rate} Hz, "
          f"gaps 1-2 s ({stream.noise_gaps} with white noise at -65..-40 dBFS, the rest silent), seed {args.seed}")
    print(f"matching: window end within [clip start + {EARLY_S} s, clip end + {LATE_S} s]; delay = window end - clip end")
    print()
    header = (f"{'model':<22} {'interp.':<15} {'detected':>9} {'subst.':>7} {'FA/hour':>8} {'delay med/p90 (s)':>18} "
              f"{'RTF':>9} {'CPU ms/s':>9} {'decisions':>10} {'model runs':>10} {'overruns':>8}")
    print(header)
    print("-" * len(header))
    replays: Dict[str, Tuple[List[Decision], List[str]]] = {}
    for model_path in models:
        interpreter = load_model(model_path).interpreter_name
        detections, decisions, wall_s, cpu_s, overruns = run_stream(model_path, audio, args.input_rate, config)
        result = score(detections, stream)
        invocations = sum(d.probabilities is not None for d in decisions)
        delay = (f"{np.median(result.delays_s):+.2f} / {np.percentile(result.delays_s, 90):+.2f}"
                 if result.delays_s.size else "-")
        print(f"{model_path.name:<22} {interpreter:<15} {100 * result.hits / result.clips:8.1f}% "
              f"{result.substitutions:7d} {result.false_alarms_per_hour(stream.duration_s):8.1f} {delay:>18} "
              f"{wall_s / stream.duration_s:9.5f} {1000 * cpu_s / stream.duration_s:9.2f} {len(decisions):10d} "
              f"{invocations:10d} {overruns:8d}")
        replays[model_path.name] = (decisions, load_model(model_path).labels)

    print()
    print("replayed policy (same posteriors): detected % / substitutions / false alarms per hour")
    thresholds = (0.5, 0.6, 0.7, 0.8, 0.9)
    for name, (decisions, labels) in replays.items():
        print(f"{name}:")
        print(f"  {'smoothing':>9} " + " ".join(f"{'thr ' + str(t):>18}" for t in thresholds))
        for smoothing in (1, 2, 3, 5):
            cells = []
            for threshold in thresholds:
                replay_config = DetectorConfig(hop_ms=config.hop_ms, threshold=threshold, smoothing_windows=smoothing,
                                               refractory_ms=config.refractory_ms,
                                               min_level_dbfs=config.min_level_dbfs)
                result = score(replay(decisions, labels, replay_config), stream)
                cells.append(f"{100 * result.hits / result.clips:5.1f}/{result.substitutions:3d}/"
                             f"{result.false_alarms_per_hour(stream.duration_s):6.1f}")
            print(f"  {smoothing:9d} " + " ".join(f"{cell:>18}" for cell in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
