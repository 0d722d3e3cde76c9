"""Everyday sounds that are not speech: how often each delivered model fires on them while it listens.

    python -m benchmarks.non_speech [--model MODEL ...] [--clips-per-kind 60] [--seed 1] [--markdown FILE]

A microphone in a kitchen or an office hears beeps, alarms, whistles, music and
clicks. None of these is in any training set here (the generated negatives
hold only noise, mains hum, room tone and silence besides speech), and none in
the streams the detectors are calibrated or benchmarked on. This benchmark
makes one-second clips of each kind (seeded, generated here):

* ``tone``: one steady sine, 100-4000 Hz (a kettle, a test tone, a hum of a machine);
* ``beeps``: tone bursts of 80-400 ms with gaps as long, 500-4000 Hz (a microwave, a reversing truck);
* ``alarm``: two tones alternating every 100-500 ms (a siren, a ringtone);
* ``sweep``: a tone gliding up or down between 200 and 4000 Hz;
* ``whistle``: a sine of 1000-3000 Hz with a 4-7 Hz vibrato (a person whistling);
* ``chord``: three notes of a major or minor triad with decaying harmonics, struck once (music);
* ``clicks``: 2-20 short decaying bursts a second (a clock, a keyboard, a turn signal);

at peaks of -30 to -3 dBFS, and runs each model over them as ``listen`` would
(the live pipeline, the model's operating point: its sidecar's calibration,
else the defaults), one clip after another with gaps of 0.5-1.5 s. It reports
the false alarms per hour of each kind of sound and in all.

It measures and prints; it asserts nothing. The clips do not depend on any
split, so no choice should be made on them and a fix then checked on them:
a recipe aimed at these sounds is to be chosen on sounds of another seed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.reporting import Report, add_markdown_argument, load_kws_models, models_to_run
from pi_runtime.arguments import non_negative_int, positive_int, run_command

SAMPLE_RATE_HZ = 16000
CLIP_SAMPLES = SAMPLE_RATE_HZ
PEAK_DBFS_RANGE = (-30.0, -3.0)
FADE_SAMPLES = 160  # 10 ms in and out: no click at the edges of a clip


def _time() -> np.ndarray:
    return np.arange(CLIP_SAMPLES) / SAMPLE_RATE_HZ


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _sine(frequency_hz: np.ndarray) -> np.ndarray:
    """A sine following ``frequency_hz`` sample by sample, its phase continuous."""
    return np.sin(2 * np.pi * np.cumsum(frequency_hz) / SAMPLE_RATE_HZ)


def _tone(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    frequency_hz = _log_uniform(rng, 100.0, 4000.0)
    return np.sin(2 * np.pi * frequency_hz * _time() + rng.uniform(0, 2 * np.pi)), f"tone {frequency_hz:.0f} Hz"


def _beeps(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    frequency_hz = _log_uniform(rng, 500.0, 4000.0)
    on_s, off_s = rng.uniform(0.08, 0.4, size=2)
    phase_s = (_time() + rng.uniform(0, on_s + off_s)) % (on_s + off_s)
    gate = (phase_s < on_s).astype(np.float64)
    return (np.sin(2 * np.pi * frequency_hz * _time()) * gate,
            f"beeps {frequency_hz:.0f} Hz, {1000 * on_s:.0f} ms on, {1000 * off_s:.0f} ms off")


def _alarm(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    low_hz = _log_uniform(rng, 500.0, 2000.0)
    high_hz = low_hz * rng.uniform(1.2, 1.6)
    step_s = rng.uniform(0.1, 0.5)
    which = (np.floor(_time() / step_s) % 2).astype(bool)
    return _sine(np.where(which, high_hz, low_hz)), f"alarm {low_hz:.0f}/{high_hz:.0f} Hz every {1000 * step_s:.0f} ms"


def _sweep(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    start_hz, end_hz = 200.0, 4000.0
    if rng.integers(2):
        start_hz, end_hz = end_hz, start_hz
    frequency_hz = start_hz * (end_hz / start_hz) ** (_time() / _time()[-1])
    return _sine(frequency_hz), f"sweep {start_hz:.0f} -> {end_hz:.0f} Hz"


def _whistle(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    centre_hz = rng.uniform(1000.0, 3000.0)
    vibrato_hz, depth = rng.uniform(4.0, 7.0), rng.uniform(0.02, 0.05)
    frequency_hz = centre_hz * (1 + depth * np.sin(2 * np.pi * vibrato_hz * _time()))
    return _sine(frequency_hz), f"whistle {centre_hz:.0f} Hz"


def _chord(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    root_hz = _log_uniform(rng, 110.0, 440.0)
    third = 4 if rng.integers(2) else 3  # major or minor
    start = int(rng.uniform(0.0, 0.3) * SAMPLE_RATE_HZ)
    t = _time()[: CLIP_SAMPLES - start]
    envelope = np.exp(-t / rng.uniform(0.2, 0.8))
    audio = np.zeros(CLIP_SAMPLES)
    for semitones in (0, third, 7):
        note_hz = root_hz * 2 ** (semitones / 12)
        for harmonic in range(1, 5):
            if note_hz * harmonic < SAMPLE_RATE_HZ / 2:
                audio[start:] += np.sin(2 * np.pi * note_hz * harmonic * t) * envelope / harmonic ** 1.5
    return audio, f"chord on {root_hz:.0f} Hz ({'major' if third == 4 else 'minor'})"


def _clicks(rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    rate_hz = rng.uniform(2.0, 20.0)
    click = rng.standard_normal(80) * np.exp(-np.arange(80) / 12.0)  # 5 ms burst
    audio = np.zeros(CLIP_SAMPLES)
    for onset_s in np.arange(rng.uniform(0, 1 / rate_hz), 1.0, 1 / rate_hz):
        onset = int(onset_s * SAMPLE_RATE_HZ)
        piece = click[: CLIP_SAMPLES - onset]
        audio[onset:onset + piece.size] += piece
    return audio, f"clicks {rate_hz:.1f} a second"


SOUNDS: Dict[str, Callable[[np.random.Generator], Tuple[np.ndarray, str]]] = {
    "tone": _tone, "beeps": _beeps, "alarm": _alarm, "sweep": _sweep, "whistle": _whistle,
    "chord": _chord, "clicks": _clicks}


def make_sounds(clips_per_kind: int, seed: int):
    """``clips_per_kind`` one-second clips of each kind of :data:`SOUNDS` as generated negatives
    (class ``_silence_``), int16 at 16 kHz, each at a random peak of -30 to -3 dBFS."""
    from pi_runtime.labels import SILENCE_LABEL
    from train.kws import acoustics
    from train.kws.negatives import GeneratedClips

    if not (isinstance(clips_per_kind, int) and clips_per_kind >= 1):
        raise ValueError(f"clips_per_kind must be a positive integer, got {clips_per_kind!r}")
    rng = np.random.default_rng(seed)
    fade = np.ones(CLIP_SAMPLES)
    fade[:FADE_SAMPLES] = np.linspace(0.0, 1.0, FADE_SAMPLES)
    fade[-FADE_SAMPLES:] = np.linspace(1.0, 0.0, FADE_SAMPLES)
    audio: List[np.ndarray] = []
    kinds: List[str] = []
    sources: List[str] = []
    for kind, make in SOUNDS.items():
        for _ in range(clips_per_kind):
            clip, source = make(rng)
            clip = acoustics.scale_to_peak_dbfs((clip * fade).astype(np.float32), float(rng.uniform(*PEAK_DBFS_RANGE)))
            audio.append(np.clip(np.rint(clip * 32767.0), -32768, 32767).astype(np.int16))
            kinds.append(kind)
            sources.append(source)
    return GeneratedClips(audio=np.stack(audio), classes=(SILENCE_LABEL,) * len(kinds), kinds=tuple(kinds),
                          sources=tuple(sources))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.non_speech", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", type=Path,
                        help="model(s) to run (default: every model delivered in models/kws/)")
    parser.add_argument("--clips-per-kind", type=positive_int, default=60,
                        help="one-second clips of each kind of sound (default 60)")
    parser.add_argument("--seed", type=non_negative_int, default=1,
                        help="seed of the sounds and the stream (default 1)")
    add_markdown_argument(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from pi_runtime.kws_pipeline import DetectorConfig
    from train.kws.streams import StreamRecipe, build_stream, run_pipeline, score

    try:
        models = models_to_run(args.model)
        loaded = load_kws_models(models)
    except (ValueError, OSError) as error:  # a truncated or other task's model, a broken sidecar
        print(f"error: {error}", file=sys.stderr)
        return 2

    sounds = make_sounds(args.clips_per_kind, args.seed)
    recipe = StreamRecipe(seed=args.seed, gap_s=(0.5, 1.5))  # levels set per clip above; faint noise in half the gaps
    stream = build_stream(None, sounds, recipe=recipe, name="non-speech stream")
    report = Report()
    kinds = list(SOUNDS)
    report(f"stream: {stream.description}")
    report(f"clips at peaks {PEAK_DBFS_RANGE[0]:g}..{PEAK_DBFS_RANGE[1]:g} dBFS; false alarms per hour of that "
           "sound (count), at each model's operating point")
    report("")
    report(f"{'model':28s} {'operating point':44s} {'all':>14s} " + " ".join(f"{kind:>14s}" for kind in kinds))
    for path, model in zip(models, loaded):
        config = DetectorConfig.from_sidecar(model.spec)
        run = run_pipeline(model, stream, config=config)
        measured = score(run.detections, stream, keywords=run.keywords)
        cells = [f"{measured.false_alarms_per_hour_of(group):8.0f} ({measured.false_alarms_of(group):3d})"
                 for group in [kinds] + [[kind] for kind in kinds]]  # all the sounds, then each kind
        report(f"{path.name:28s} {config.summary():44s} " + " ".join(f"{cell:>14s}" for cell in cells))
    if args.markdown is not None:
        report.write_markdown(args.markdown, title="Everyday non-speech sounds (`python -m benchmarks.non_speech`)",
                              command=" ".join(["python -m benchmarks.non_speech",
                                                *(sys.argv[1:] if argv is None else argv)]),
                              note="see the module docstring for the sounds")
    return 0


if __name__ == "__main__":
    run_command(main)
