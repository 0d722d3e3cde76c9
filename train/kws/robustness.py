"""``python -m train.kws.robustness MODEL [MODEL ...]``: delivered models under the conditions of the world.

Scores each exported model (``.tflite`` or ``.tflite.zlib`` with its sidecar)
through ``pi_runtime`` and the native frontend, as ``python -m train.kws.evaluate``
does (its loader, label handling and scoring are reused), on the clips of a
split changed as a microphone in a room would hear them:

* **level**: each clip scaled so that its peak lies at -50, -40, -30, -20 and
  0 dBFS, then rounded to int16 (what a device's ADC would deliver);
* **reverberation**: each clip convolved with its own synthetic room impulse
  response (``train.kws.acoustics.room_impulse_response``) of RT60 0.3, 0.6 and 1.0 s;
* **babble**: each clip mixed at 20, 10 and 5 dB SNR with babble of
  ``BABBLE_TALKERS`` OTHER clips of the split (never the clip itself);
* **pink noise**: each clip mixed with pink noise at 20, 10 and 5 dB SNR;
* **synthetic voices**: the keywords spoken by the synthetic voices of the
  split (``train.kws.negatives.synthetic_keywords``): the held-out test voice for
  the test split or a ``--split-file``, the validation voice for ``--split val``;
  with ``--split val`` also the **accented voices** (``ACCENTED_VOICES``: a woman's
  voice of another language saying the keywords; no bar reads it).

With ``--held-out``, also conditions no recipe was chosen on (:data:`HELD_OUT_CONDITIONS`; the
versions' rule reads only the ones above, on validation), as a check of what the models learned
beyond them:

* **room and babble at once**: babble at 10 dB SNR, the mixture then in a room of RT60 0.6 s (a
  kitchen with people talking; training drew rooms and babble each on its own share of the clips);
* **telephone band**: 300-3400 Hz (fourth-order high- and low-pass), as a cheap microphone or a call;
* **speech rate**: each clip played 0.85 and 1.15 times as fast (pitch moves with it), centred again;
* **overdrive**: each clip amplified until its peak lies 12 dB over full scale, clipped there (a
  microphone gain set too high), then brought back to its own peak.

SNRs are measured over the active part of the word (``acoustics.mix_at_snr``).
A reverberated or noisy clip is scaled back to the clean clip's peak, so no
condition adds clipping or changes the level; every clip is rounded to int16.
Random choices come from ``--seed`` and the condition's name, so a condition
is the same audio whichever other conditions or models are run.

Writes one table per model (accuracy per condition, overall and per word) to
``<output-dir>/robustness_<model>.md``, a summary of all models against the
issue's bars to ``robustness_summary.md`` and a plot of accuracy against SNR,
level and RT60 to ``robustness_summary.png``.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.arguments import non_negative_int, run_command
from train.kws.evaluate import (Evaluation, add_data_arguments, answer_labels, check_split_labels,
                                load_scored_model, peak_dbfs, predict_ids, read_split_file, resolve_data)

LEVELS_DBFS: Tuple[float, ...] = (-50.0, -40.0, -30.0, -20.0, 0.0)
RT60S_S: Tuple[float, ...] = (0.3, 0.6, 1.0)
SNRS_DB: Tuple[float, ...] = (20.0, 10.0, 5.0)
BABBLE_TALKERS = 5
SYNTHETIC = "synthetic voices"
ACCENTED = "accented voices"  # the validation split's accented voice: no bar, a check of other voices
# The bars: (condition name, least accuracy); the synthetic voices also need every word >= 75 %.
BARS: Tuple[Tuple[str, float], ...] = (("peak -40 dBFS", 0.93), ("RT60 0.6 s", 0.90), ("babble 10 dB SNR", 0.88),
                                       (SYNTHETIC, 0.90))
SYNTHETIC_WORD_BAR = 0.75


@dataclass(frozen=True)
class Condition:
    """One way of changing the clips: ``group`` ("clean", "level", "reverb", "babble", "pink"; the held-out
    "room_babble", "telephone", "speed", "overdrive") and its value (peak dBFS, RT60 in s, SNR in dB, speed
    factor, gain in dB; None for clean and telephone)."""

    group: str
    value: Optional[float] = None

    @property
    def name(self) -> str:
        if self.group == "clean":
            return "clean"
        if self.group == "level":
            return f"peak {self.value:g} dBFS"
        if self.group == "reverb":
            return f"RT60 {self.value:g} s"
        if self.group == "room_babble":
            return f"RT60 {ROOM_WITH_BABBLE_RT60_S:g} s + babble {self.value:g} dB SNR"
        if self.group == "telephone":
            return f"telephone {TELEPHONE_BAND_HZ[0]:g}-{TELEPHONE_BAND_HZ[1]:g} Hz"
        if self.group == "speed":
            return f"speech {self.value:g}x speed"
        if self.group == "overdrive":
            return f"clipped {self.value:g} dB over full scale"
        return f"{self.group} {self.value:g} dB SNR"

    def rng(self, seed: int) -> np.random.Generator:
        """The condition's own random stream: the same audio whichever other conditions run."""
        return np.random.default_rng([seed, zlib.crc32(self.name.encode())])


CONDITIONS: Tuple[Condition, ...] = (
    (Condition("clean"),)
    + tuple(Condition("level", level) for level in LEVELS_DBFS)
    + tuple(Condition("reverb", rt60) for rt60 in RT60S_S)
    + tuple(Condition("babble", snr) for snr in SNRS_DB)
    + tuple(Condition("pink", snr) for snr in SNRS_DB))
# Conditions no recipe was chosen on (``--held-out``); see the module's docstring.
ROOM_WITH_BABBLE_RT60_S = 0.6
TELEPHONE_BAND_HZ = (300.0, 3400.0)
HELD_OUT_CONDITIONS: Tuple[Condition, ...] = (
    Condition("room_babble", 10.0), Condition("telephone"), Condition("speed", 0.85), Condition("speed", 1.15),
    Condition("overdrive", 12.0))


# -- the conditions -----------------------------------------------------------------------------
def to_int16(audio: np.ndarray) -> np.ndarray:
    """float audio (full scale 1.0) as a device's int16 samples: rounded, clipped to the int16 range."""
    return np.clip(np.rint(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def other_clips(num_clips: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """int[num_clips, count]: for each clip, ``count`` different clips other than itself."""
    if num_clips <= count:
        raise ValueError(f"babble of {count} other clips needs more than {count} clips, got {num_clips}")
    # Draw among the other num_clips - 1 and skip the clip's own index.
    draws = np.stack([rng.choice(num_clips - 1, size=count, replace=False) for _ in range(num_clips)])
    return draws + (draws >= np.arange(num_clips)[:, None])


def apply_condition(audio: np.ndarray, condition: Condition, *, seed: int = 0,
                    sample_rate_hz: int = 16000) -> np.ndarray:
    """The clips of ``audio`` (int16[n, samples]) under ``condition``; returns int16[n, samples].

    Deterministic in ``seed`` and the condition. See the module's docstring for how each is made.
    """
    from train.kws import acoustics

    audio = np.asarray(audio)
    if audio.ndim != 2 or audio.dtype != np.int16:
        raise ValueError(f"audio must be int16[clips, samples], got {audio.dtype}{list(audio.shape)}")
    if condition.group == "clean":
        return audio.copy()
    clean = audio.astype(np.float32) / 32768.0
    if condition.group == "level":
        return to_int16(np.stack([acoustics.scale_to_peak_dbfs(clip, condition.value) for clip in clean]))
    if condition.group == "speed":
        from train.kws.augment import perturb_speed

        return perturb_speed(audio, np.ones(len(audio), bool), np.full(len(audio), condition.value))
    rng = condition.rng(seed)
    if condition.group == "reverb":
        def change(row, clip):
            response = acoustics.room_impulse_response(rt60_s=condition.value, sample_rate_hz=sample_rate_hz, rng=rng)
            return acoustics.reverberate(clip, response)
    elif condition.group in ("babble", "room_babble"):
        sources = other_clips(len(clean), BABBLE_TALKERS, rng)

        def change(row, clip):
            noise = acoustics.babble(clean[sources[row]], talkers=BABBLE_TALKERS, rng=rng)
            mixture = acoustics.mix_at_snr(clip, noise, condition.value, sample_rate_hz=sample_rate_hz)
            if condition.group == "babble":
                return mixture
            # the talkers in the word's room: the mixture is reverberated
            response = acoustics.room_impulse_response(rt60_s=ROOM_WITH_BABBLE_RT60_S,
                                                       sample_rate_hz=sample_rate_hz, rng=rng)
            return acoustics.reverberate(mixture, response)
    elif condition.group == "pink":
        def change(row, clip):
            noise = acoustics.coloured_noise("pink", clip.size, rng)
            return acoustics.mix_at_snr(clip, noise, condition.value, sample_rate_hz=sample_rate_hz)
    elif condition.group == "telephone":
        from train.kws.augment import microphone_response

        response = microphone_response(clean.shape[1] // 2 + 1, sample_rate_hz, [TELEPHONE_BAND_HZ[0]],
                                       [TELEPHONE_BAND_HZ[1]], [0.0])[0] ** 2  # twice: fourth-order edges

        def change(row, clip):
            return np.fft.irfft(np.fft.rfft(clip) * response, clip.size).astype(np.float32)
    elif condition.group == "overdrive":
        over = np.float32(10.0 ** (condition.value / 20.0))

        def change(row, clip):  # every clip as far over, whatever its level (its peak is kept below)
            return np.clip(clip * (over / np.max(np.abs(clip))), -1.0, 1.0)
    else:
        raise ValueError(f"unknown condition group {condition.group!r}")
    out = np.zeros_like(clean)
    for row, clip in enumerate(clean):
        peak = float(np.max(np.abs(clip), initial=0.0))
        if peak == 0.0:
            continue  # a silent clip has no level to keep and no SNR to set
        changed = change(row, clip)
        out[row] = changed * (peak / max(float(np.max(np.abs(changed))), 1e-12))
    return to_int16(out)


# -- scoring ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRobustness:
    """One model's answers under every condition (an :class:`Evaluation` per condition name, in order)."""

    model_path: Path
    keywords: Tuple[str, ...]
    evaluations: Dict[str, Evaluation]

    @property
    def name(self) -> str:
        return model_name(self.model_path)

    def accuracy(self, condition: str) -> float:
        return self.evaluations[condition].accuracy if condition in self.evaluations else float("nan")


def model_name(path: Path) -> str:
    """``kws_a`` for ``models/kws/kws_a.tflite.zlib``."""
    name = Path(path).name
    for suffix in (".tflite.zlib", ".tflite"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return Path(path).stem


def clips_for_model(clip_labels: Sequence[str], labels: Sequence[str],
                    unknown_label: Optional[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(rows, label ids) of the clips a model answering among ``labels`` is scored on.

    ``clip_labels`` is each clip's class; a clip of a class the model lacks is
    its ``unknown_label`` when it has one, and left out otherwise (a keyword-subset model).
    """
    rows, label_ids = [], []
    for row, label in enumerate(clip_labels):
        if label in labels:
            rows.append(row)
            label_ids.append(list(labels).index(label))
        elif unknown_label is not None:
            rows.append(row)
            label_ids.append(len(labels))
    return np.array(rows, dtype=np.int64), np.array(label_ids, dtype=np.int64)


def score_models(model_paths: Sequence[Path], audio: np.ndarray, clip_labels: Sequence[str],
                 clip_paths: Sequence[Path], *, synthetic=None, accented=None, seed: int = 0,
                 conditions: Sequence[Condition] = CONDITIONS,
                 say: Callable[[str], None] = lambda message: None) -> List[ModelRobustness]:
    """Score every model under every condition.

    Parameters
    ----------
    model_paths : exported models with sidecars
    audio : int16[n, samples], the split's clips at 16 kHz; ``clip_labels`` (str[n]) their classes
        and ``clip_paths`` their files (for the reports)
    synthetic : ``train.kws.negatives.GeneratedClips`` (anything with ``.audio`` int16[m, samples]
        and ``.classes`` str[m]) of held-out voices, or None to leave that condition out
    accented : the same for the split's accented voices (``synthetic_keywords(split, accented=True)``),
        scored after them, or None
    seed : for the random parts of the conditions
    conditions : which conditions (default: all of :data:`CONDITIONS`; those of :data:`HELD_OUT_CONDITIONS`
        are reported after the synthetic voices)
    say : progress messages

    Returns
    -------
    list of ModelRobustness, in the order of ``model_paths``
    """
    from pi_runtime.labels import keyword_labels
    from train.kws.features import compute_features

    models = [load_scored_model(path) for path in model_paths]
    audio_by_condition: Dict[str, Tuple[np.ndarray, Sequence[str], Sequence[Path]]] = {}
    for index, condition in enumerate(conditions, start=1):
        say(f"[{index}/{len(conditions)}] making the clips: {condition.name}")
        audio_by_condition[condition.name] = (apply_condition(audio, condition, seed=seed), clip_labels, clip_paths)
    for name, spoken in ((SYNTHETIC, synthetic), (ACCENTED, accented)):
        if spoken is not None:
            audio_by_condition[name] = (np.asarray(spoken.audio), tuple(spoken.classes),
                                        [Path(label) / f"{name.split()[0]}_{row}" for row, label in
                                         enumerate(spoken.classes)])
    held_out = [condition.name for condition in conditions if condition in HELD_OUT_CONDITIONS]
    for name in held_out:  # after the synthetic voices: the columns the bars read come first
        audio_by_condition[name] = audio_by_condition.pop(name)
    results = []
    features_cache: Dict[Tuple, np.ndarray] = {}
    for model_path, model in zip(model_paths, models):
        labels, unknown_label = answer_labels(model)
        all_labels = labels + ((unknown_label,) if unknown_label else ())
        keywords = keyword_labels(model.labels, model.sidecar.get("keywords"))
        evaluations = {}
        for condition_name, (condition_audio, labels_of_clips, paths) in audio_by_condition.items():
            rows, label_ids = clips_for_model(labels_of_clips, labels, unknown_label)
            if len(rows) == 0:
                say(f"{model_name(model_path)}: no clips of its labels under {condition_name}, left out")
                continue
            key = (condition_name, model.model_input)
            if key not in features_cache:
                features_cache[key] = compute_features(condition_audio, model.model_input)
            features = features_cache[key][rows]
            evaluation = Evaluation(model_path=Path(model_path), labels=all_labels,
                                    clip_paths=[Path(paths[row]) for row in rows], label_ids=label_ids,
                                    predicted_ids=predict_ids(model, features, all_labels),
                                    peak_dbfs=peak_dbfs(condition_audio[rows]))
            evaluations[condition_name] = evaluation
            say(f"{model_name(model_path)}: {condition_name}: {evaluation.accuracy:.2%} of {len(rows)} clips")
        results.append(ModelRobustness(model_path=Path(model_path), keywords=keywords, evaluations=evaluations))
    return results


# -- reports ------------------------------------------------------------------------------------
def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}"


def format_model_table(result: ModelRobustness) -> str:
    """Markdown: one row per condition, the accuracy over all clips and on each word's clips (%)."""
    columns = list(result.keywords)
    extra = sorted({label for evaluation in result.evaluations.values() for label in evaluation.word_accuracy()}
                   - set(columns))
    columns += extra  # e.g. the _unknown_ clips of a keyword-subset model
    lines = ["| condition | clips | accuracy (%) | " + " | ".join(columns) + " |",
             "| --- | ---: | ---: |" + " ---: |" * len(columns)]
    for name, evaluation in result.evaluations.items():
        words = evaluation.word_accuracy()
        lines.append(f"| {name} | {len(evaluation.label_ids)} | {_percent(evaluation.accuracy)} | "
                     + " | ".join(_percent(words.get(word, float("nan"))) for word in columns) + " |")
    return "\n".join(lines)


def bar_results(result: ModelRobustness) -> List[Tuple[str, float, float, bool]]:
    """(condition, accuracy, bar, met) for each of :data:`BARS` the model was scored on."""
    out = []
    for condition, bar in BARS:
        if condition not in result.evaluations:
            continue
        accuracy = result.accuracy(condition)
        met = accuracy >= bar
        if condition == SYNTHETIC:
            met = met and min(result.evaluations[condition].word_accuracy().values()) >= SYNTHETIC_WORD_BAR
        out.append((condition, accuracy, bar, met))
    return out


def format_model_report(result: ModelRobustness, *, split: str, command: str) -> str:
    lines = [f"# Robustness of {result.name}", "",
             f"Model: `{result.model_path}`. Clips: the {split} split under each condition; "
             + (f"synthetic voices: {len(result.evaluations[SYNTHETIC].label_ids)} clips of the held-out voices. "
                if SYNTHETIC in result.evaluations else "")
             + (f"accented voices: {len(result.evaluations[ACCENTED].label_ids)} clips of the split's women's "
                "voices of other languages. " if ACCENTED in result.evaluations else "")
             + "Accuracy through `pi_runtime` (the file, the native frontend); an answer `_silence_` or "
               "`_unknown_` on a keyword clip is wrong.", "",
             f"Generated by `{command}`.", "", format_model_table(result), ""]
    bars = bar_results(result)
    if bars:
        lines += ["Against the bars: " + "; ".join(
            f"{condition} {_percent(accuracy)} % (bar {100 * bar:.0f} %"
            + (f", every word >= {100 * SYNTHETIC_WORD_BAR:.0f} %" if condition == SYNTHETIC else "")
            + f"): {'met' if met else 'NOT met'}" for condition, accuracy, bar, met in bars), ""]
    lines += [conditions_text([result]), ""]
    return "\n".join(lines)


CONDITIONS_TEXT = (
    "How the conditions are made: level = each clip scaled to that peak, rounded to int16; RT60 = each clip "
    "convolved with its own synthetic room impulse response (direct path, early reflections, an exponentially "
    "decaying low-passed noise tail; `train.kws.acoustics.room_impulse_response`); babble = "
    f"{BABBLE_TALKERS} other clips of the split, shifted and summed, mixed at that SNR over the word's active part; "
    "pink = pink noise at that SNR. Reverberant and noisy clips are scaled back to the clean clip's peak. "
    "Random choices are seeded (`--seed`).")
HELD_OUT_TEXT = (
    "Held out (`--held-out`; no recipe was chosen on them): babble at 10 dB SNR with the mixture in a room of "
    f"RT60 {ROOM_WITH_BABBLE_RT60_S:g} s; a telephone band ({TELEPHONE_BAND_HZ[0]:g}-{TELEPHONE_BAND_HZ[1]:g} Hz, "
    "fourth-order filters); each clip played 0.85 and 1.15 times as fast (pitch with it), centred again; each "
    "clip amplified until its peak lies 12 dB over full scale and clipped there, then brought back to its peak.")


def conditions_text(results: Sequence[ModelRobustness]) -> str:
    """How the conditions were made, the held-out ones too where any was scored."""
    held_out = {condition.name for condition in HELD_OUT_CONDITIONS}
    scored = any(held_out & set(result.evaluations) for result in results)
    return CONDITIONS_TEXT + (" " + HELD_OUT_TEXT if scored else "")


def format_summary(results: Sequence[ModelRobustness], *, command: str) -> str:
    """Markdown: each model's accuracy under every condition, and the bars."""
    names = [name for name in results[0].evaluations] if results else []
    for result in results[1:]:
        names += [name for name in result.evaluations if name not in names]
    lines = ["# Robustness of the keyword-spotting models", "",
             f"Generated by `{command}`. Accuracy (%) over the clips of each model's words; "
             "the tables per word are in `robustness_<model>.md`.", "",
             "| model | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for result in results:
        lines.append(f"| {result.name} | " + " | ".join(_percent(result.accuracy(name)) for name in names) + " |")
    lines += ["", "## Bars", "",
              "| model | " + " | ".join(f"{condition} >= {100 * bar:.0f} %" for condition, bar in BARS)
              + f" | worst synthetic word (>= {100 * SYNTHETIC_WORD_BAR:.0f} %) |",
              "| --- |" + " --- |" * (len(BARS) + 1)]
    for result in results:
        cells = []
        for condition, _ in BARS:
            met = {name: (accuracy, ok) for name, accuracy, _, ok in bar_results(result)}.get(condition)
            cells.append("-" if met is None else f"{_percent(met[0])} {'met' if met[1] else 'NOT met'}")
        worst = "-"
        if SYNTHETIC in result.evaluations:
            word, accuracy = min(result.evaluations[SYNTHETIC].word_accuracy().items(), key=lambda item: item[1])
            worst = f"{word} {_percent(accuracy)}"
        lines.append(f"| {result.name} | " + " | ".join(cells) + f" | {worst} |")
    lines += ["", conditions_text(results), "", "![accuracy against SNR, level and RT60](robustness_summary.png)", ""]
    return "\n".join(lines)


def plot_summary(results: Sequence[ModelRobustness], png_path: Path) -> Path:
    """Accuracy against SNR (babble, pink), against peak level and against RT60, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = ((("babble", "pink"), "SNR (dB)"), (("level",), "peak level (dBFS)"), (("reverb",), "RT60 (s)"))
    for axis, (groups, label) in zip(axes, panels):
        for index, result in enumerate(results):
            colour = f"C{index % 10}"
            clean = result.accuracy("clean")
            for group, style in zip(groups, ("-", "--")):
                points = [(c.value, result.accuracy(c.name)) for c in CONDITIONS
                          if c.group == group and c.name in result.evaluations]
                if not points:
                    continue
                x, y = zip(*sorted(points))
                axis.plot(x, [100 * v for v in y], style, marker="o", color=colour,
                          label=f"{result.name}" + (f" {group}" if len(groups) > 1 else ""))
            if clean == clean:
                axis.axhline(100 * clean, color=colour, linewidth=0.6, alpha=0.4)
        axis.set_xlabel(label)
        axis.set_ylabel("accuracy (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    axes[0].invert_xaxis()  # harder to the right, as on the other panels
    figure.suptitle("Keyword spotting under level, noise and reverberation (thin lines: clean accuracy)")
    figure.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    return png_path


def write_reports(results: Sequence[ModelRobustness], output_dir: Path, *, split: str, command: str) -> List[Path]:
    """``robustness_<model>.md`` for each model, ``robustness_summary.md`` and ``.png``; returns the paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for result in results:
        path = output_dir / f"robustness_{result.name}.md"
        path.write_text(format_model_report(result, split=split, command=command))
        written.append(path)
    summary = output_dir / "robustness_summary.md"
    summary.write_text(format_summary(results, command=command))
    written += [summary, plot_summary(results, output_dir / "robustness_summary.png")]
    return written


# -- command line -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.kws.robustness", description=__doc__.split("\n\n")[0],
        epilog="Example: nice -n 15 python -m train.kws.robustness models/kws/kws_a.tflite.zlib "
               "models/kws/kws_b.tflite.zlib")
    parser.add_argument("models", nargs="+", type=Path, help="exported models (.tflite or .tflite.zlib, sidecar beside)")
    add_data_arguments(parser)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random parts of the conditions (default: 0)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where the tables and the plot go (default: benchmarks/results)")
    parser.add_argument("--no-synthetic", action="store_true",
                        help="leave out the synthetic voices (the split's own: the held-out test voice, or "
                             "the validation voice with --split val, and then the validation split's accented "
                             "voice too; generated with flite/festival and cached "
                             "under the data folder on first use)")
    parser.add_argument("--held-out", action="store_true",
                        help="also score conditions no recipe was chosen on: babble in a room, a telephone band, "
                             "faster and slower speech, clipping (columns after the others)")
    return parser


def load_split_audio(args: argparse.Namespace, model_paths: Sequence[Path]):
    """(int16 audio, clip labels, clip paths, data folder) of the split the arguments name."""
    from train.kws.data import LABELS, label_of, load_split
    from train.kws.folder_data import read_clips

    data_dir, split_path = resolve_data(args)
    if args.split_file is None:
        clips = load_split(args.split, data_dir=data_dir, labels=LABELS, split_path=split_path, progress=True)
    else:
        paths = read_split_file(args.split_file, data_dir)
        if len(paths) <= BABBLE_TALKERS:  # said now, not at the babble conditions
            raise ValueError(f"{args.split_file} lists {len(paths)} clip(s); the babble conditions mix "
                             f"{BABBLE_TALKERS} other clips into each, so it needs at least {BABBLE_TALKERS + 1}")
        for model_path in model_paths:  # every folder label is one the model answers (or its unknown class)
            check_split_labels(paths, *answer_labels(load_scored_model(model_path)), model_path=model_path,
                               split_path=args.split_file)
        # any rate and channel count, as evaluate reads a split file; an empty or unreadable file is an error
        clips, _ = read_clips(paths, sorted({label_of(path) for path in paths}), progress=True)
    return clips.audio, [clips.labels[i] for i in clips.label_ids], list(clips.paths), data_dir


def synthetic_voices_split(args: argparse.Namespace) -> str:
    """Whose synthetic voices speak the keywords: the split's own (validation is never scored on the
    held-out test voice, so choices made on it stay clean), the test voice for a split file."""
    return args.split if args.split_file is None else "test"


def accented_validation_voice(data_dir: Path, say: Callable[[str], None]):
    """The validation split's accented keywords, or None (said) where festival or its voice is missing:
    a condition no bar reads is not worth refusing the rest for."""
    from train.kws.negatives import synthetic_keywords

    try:
        return synthetic_keywords("val", data_dir=data_dir, progress=True, accented=True)
    except RuntimeError as error:
        say(f"warning: the accented voices are left out: {error}")
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    command = "python -m train.kws.robustness " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        missing = [str(path) for path in args.models if not path.is_file()]
        if missing:
            raise ValueError(f"no such model file: {', '.join(missing)}")
        for path in args.models:
            load_scored_model(path)  # a broken model is said before the data is read
        audio, clip_labels, clip_paths, data_dir = load_split_audio(args, args.models)
        synthetic = accented = None
        if not args.no_synthetic:
            from train.kws.negatives import synthetic_keywords

            voices = synthetic_voices_split(args)
            say(f"the {voices} split's synthetic voices (generated on first use)")
            synthetic = synthetic_keywords(voices, data_dir=data_dir, progress=True)
            if voices == "val":
                accented = accented_validation_voice(data_dir, say)
        conditions = CONDITIONS + (HELD_OUT_CONDITIONS if args.held_out else ())
        results = score_models(args.models, audio, clip_labels, clip_paths, synthetic=synthetic, accented=accented,
                               seed=args.seed, conditions=conditions, say=say)
    except (ValueError, RuntimeError, FileNotFoundError) as error:  # ModelError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    from train.paths import repo_root

    output_dir = args.output_dir if args.output_dir is not None else repo_root() / "benchmarks" / "results"
    split = args.split_file.name if args.split_file is not None else args.split
    for path in write_reports(results, output_dir, split=split, command=command):
        say(f"wrote {path}")
    print(format_summary(results, command=command))
    return 0


if __name__ == "__main__":
    run_command(main)
