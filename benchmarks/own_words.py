"""Your own words, measured: Mini Speech Commands words treated as a user's recordings.

For each chosen word (default go, no, yes): 30 takes from the course's
TRAINING split by the fewest speakers (those with the most takes of it: 7-8
speakers, as Mini Speech Commands holds at most 4-7 takes of a word by one
speaker), are joined into one long recording per speaker and word
with pauses of 0.6-1.2 s of faint noise, and split back into takes by
``python -m pi_runtime.record --from-recording`` (as a user would feed a
phone recording); 30 s of faint pink noise becomes the recorded background
(``record --background``). The folder is then trained on with
``python -m train.kws --data-dir`` once per transfer mode (default: fine-tune
from a delivered model's body, ``DEFAULT_BODY`` of train/kws/__main__.py, and from
scratch), every model is scored
through pi_runtime on the course's TEST-split clips of those words (other
speakers; an answer _silence_/_unknown_ counts wrong; ``--split val`` scores the
validation split's instead, for choices), and, with
``--streaming``, run through the streaming benchmark's realistic test stream
(keywords = the chosen words; the other five words are non-keyword speech).
Times: the record step, each training command, and the whole path from the
recording to the delivered model.

    nice -n 15 python -m benchmarks.own_words [--words go,no,yes] [--modes fine-tune,none]
        [--work-dir /tmp/own_words] [--streaming] [--epochs N] [--closed-set] [--no-tonal-negatives] [--body MODEL]
        [--split val]

It measures and prints; it asserts nothing. The words are ones the delivered
body was trained on (Mini Speech Commands has no others), which flatters
transfer: the keyword rows of the new head start fresh, but the body's
features were learnt on these words.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.reporting import add_data_dir_argument
from pi_runtime.arguments import non_negative_int, output_folder, positive_int, run_command
from train.kws.folder_training import TRANSFER_MODES

REPO_ROOT = Path(__file__).resolve().parent.parent
# Left in the work folder, so that a later run clears only a folder this benchmark made.
WORK_DIR_MARK = ".own_words_benchmark"
TAKES_PER_WORD = 30  # Mini Speech Commands has at most 4-7 takes of a word by one speaker


def choose_takes(words: Sequence[str], data_dir: Path) -> Dict[str, Dict[str, List[Path]]]:
    """word -> speaker -> clips: ``TAKES_PER_WORD`` training-split clips of each word from the fewest speakers
    (those with the most takes of it first, ties by name; the last speaker's takes cut to fit)."""
    from train.kws.data import read_split, split_file
    from train.kws.folder_data import speaker_of

    by_word: Dict[str, Dict[str, List[Path]]] = defaultdict(lambda: defaultdict(list))
    for path in read_split(split_file("train"), data_dir):
        if path.parent.name in words:
            by_word[path.parent.name][speaker_of(path)].append(path)
    chosen: Dict[str, Dict[str, List[Path]]] = {}
    for word in words:
        chosen[word], count = {}, 0
        for speaker in sorted(by_word[word], key=lambda name: (-len(by_word[word][name]), name)):
            if count == TAKES_PER_WORD:
                break
            chosen[word][speaker] = sorted(by_word[word][speaker])[:TAKES_PER_WORD - count]
            count += len(chosen[word][speaker])
    return chosen


def long_recording(paths: Sequence[Path], rng: np.random.Generator) -> np.ndarray:
    """The takes one after another, each followed by 0.6-1.2 s of noise at -60 dBFS RMS, int16 at 16 kHz."""
    from pi_runtime.wav import read_wav

    parts = [np.zeros(8000, np.float32)]
    for path in paths:
        samples, _ = read_wav(path)
        parts.append(samples.astype(np.float32) / 32768.0)
        parts.append(np.zeros(int(rng.uniform(0.6, 1.2) * 16000), np.float32))
    audio = np.concatenate(parts)
    audio += rng.normal(scale=10 ** (-60 / 20), size=audio.size).astype(np.float32)
    return np.clip(np.rint(audio * 32768.0), -32768, 32767).astype(np.int16)


def run(command: List[str], *, log: Path) -> float:
    """Run ``command`` (output to ``log``); seconds taken. Exits with its output when it fails."""
    started = time.perf_counter()
    with open(log, "w") as out:
        completed = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    seconds = time.perf_counter() - started
    output = log.read_text()
    if completed.returncode not in (0, 1) or "Traceback" in output:  # 1 alone: a limit missed, model delivered
        print(output[-4000:], file=sys.stderr)
        raise SystemExit(f"{' '.join(command)} failed with status {completed.returncode}")
    return seconds


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.own_words", description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", default="go,no,yes",
                        help="Mini Speech Commands words to treat as your own, comma-separated (default go,no,yes)")
    parser.add_argument("--modes", default="fine-tune,none",
                        help=f"comma-separated --transfer modes to train, of {', '.join(TRANSFER_MODES)} "
                             "(default fine-tune,none)")
    parser.add_argument("--work-dir", type=output_folder, default=Path("/tmp/own_words"),
                        help="where the recordings, the dataset and the models go, cleared first if an earlier "
                             "run of this benchmark made it; any other folder must be empty (default "
                             "/tmp/own_words)")
    add_data_dir_argument(parser, holds="mini_speech_commands/")
    parser.add_argument("--epochs", type=positive_int, default=None, help="passed to train.kws (default: its defaults)")
    parser.add_argument("--closed-set", action="store_true",
                        help="train closed-set models (no _silence_/_unknown_, no negatives) instead, for comparison")
    parser.add_argument("--body", type=Path, default=None,
                        help="the delivered model to transfer from (train.kws --body; default its DEFAULT_BODY)")
    parser.add_argument("--no-tonal-negatives", action="store_true",
                        help="train without the tonal negatives (train.kws --no-tonal-negatives; the default "
                             "before 2026-12-04)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="the course split whose clips of the words score the models (default test; val "
                             "for choices)")
    parser.add_argument("--streaming", action="store_true",
                        help="also run benchmarks.streaming's realistic test stream on every model")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the pauses and noise (default 0)")
    args = parser.parse_args(argv)
    if args.streaming and args.split != "test":
        parser.error("--streaming runs the test stream; for choices on validation, calibrate on the validation "
                     "stream instead (python -m train.kws.calibrate MODEL --target-false-alarms-per-hour 50 "
                     "--dry-run)")

    from train.kws.data import LABELS, ensure_dataset, read_split, split_file
    from train.kws.evaluate import evaluate_model
    from pi_runtime.wav import write_wav

    words = sorted(word.strip() for word in args.words.split(",") if word.strip())
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = [word for word in words if word not in LABELS] + [mode for mode in modes if mode not in TRANSFER_MODES]
    if not words or not modes or unknown:
        parser.error(f"--words takes words of {', '.join(LABELS)} and --modes modes of {', '.join(TRANSFER_MODES)}; "
                     f"got {', '.join(map(repr, unknown)) or 'none'}")
    work = args.work_dir
    if work.is_dir() and not made_by_this_benchmark(work):
        parser.error(f"--work-dir {work} holds files this benchmark did not make (no {WORK_DIR_MARK} in it), "
                     "and it clears its folder first: give an empty or new folder, or remove that one")
    data_dir = ensure_dataset(args.data_dir)
    print(f"own words benchmark: {', '.join(words)}; modes {', '.join(modes)}; {platform.machine()} "
          f"{platform.processor() or platform.system()}, {os.cpu_count()} cores; python {platform.python_version()}")
    if work.exists():  # an earlier run's folder (marked) or an empty one
        import shutil

        shutil.rmtree(work)
    recordings, dataset, logs = work / "recordings", work / "dataset", work / "logs"
    for folder in (recordings, logs):
        folder.mkdir(parents=True)
    (work / WORK_DIR_MARK).write_text("made by python -m benchmarks.own_words, which clears this folder when run "
                                      "on it again\n")
    rng = np.random.default_rng(args.seed)
    takes = choose_takes(words, data_dir)
    record_seconds, kept = 0.0, Counter()
    for word in words:
        for speaker, paths in takes[word].items():
            wav = recordings / f"{word}_{speaker}.wav"
            write_wav(wav, long_recording(paths, rng), 16000)
            record_seconds += run([sys.executable, "-m", "pi_runtime.record", "--label", word, "--out", str(dataset),
                                   "--speaker", speaker, "--from-recording", str(wav)],
                                  log=logs / f"record_{word}_{speaker}.txt")
            kept[word] = len(list((dataset / word).glob("*.wav")))
    room = recordings / "room.wav"
    write_wav(room, np.clip(np.rint(_pink(30 * 16000, rng) * 10 ** (-55 / 20) * 32768), -32768, 32767)
              .astype(np.int16), 16000)
    record_seconds += run([sys.executable, "-m", "pi_runtime.record", "--background", "30", "--out", str(dataset),
                           "--from-recording", str(room)], log=logs / "record_background.txt")
    counts = ", ".join(f"{word} {kept[word]}/{TAKES_PER_WORD} ({len(takes[word])} speakers)" for word in words)
    print(f"record --from-recording: {counts} takes kept; {record_seconds:.1f} s for "
          f"{sum(map(len, takes.values()))} recordings and the background")

    course_clips = [path for path in read_split(split_file(args.split), data_dir) if path.parent.name in words]
    score_list = work / f"course_{args.split}_split.txt"
    score_list.write_text("".join(f"{path.relative_to(data_dir).as_posix()}\n" for path in course_clips))
    results = {}
    for mode in modes:
        tag = f"{mode}_closed" if args.closed_set else mode
        out = work / f"model_{tag}"
        # 7-10 speakers a word: a speaker-aware 15/15 split would often leave a split without a word.
        command = [sys.executable, "-m", "train.kws", "--data-dir", str(dataset), "--split-by", "clip",
                   "--val-percent", "15", "--test-percent", "15", "--transfer", mode, "--output-dir", str(out),
                   "--quiet"] + (["--closed-set"] if args.closed_set else []) \
            + (["--no-tonal-negatives"] if args.no_tonal_negatives else []) \
            + (["--body", str(args.body.resolve())] if args.body else [])
        if args.epochs is not None:
            command += ["--epochs", str(args.epochs)]
        seconds = run(command, log=logs / f"train_{tag}.txt")
        model = next(out.glob("*.tflite.zlib"))
        evaluation = evaluate_model(model, data_dir=data_dir, split_file=score_list)
        rejected = len(evaluation.rejected_keyword_rows)
        words_accuracy = ", ".join(f"{word} {100 * share:.1f} %" for word, share in evaluation.word_accuracy().items())
        results[tag] = (model, seconds, evaluation.accuracy)
        print(f"\n--transfer {mode}{' --closed-set' if args.closed_set else ''}: trained and delivered in {seconds:.0f} s -> {model}")
        print(f"  course {args.split} clips of {', '.join(words)} ({len(evaluation.label_ids)}): "
              f"{100 * evaluation.accuracy:.2f} % ({words_accuracy}; {rejected} answered _silence_/_unknown_)")
        print(f"  whole path (record + train): {record_seconds + seconds:.0f} s; "
              f"training log {logs / f'train_{tag}.txt'}")
    if args.streaming:
        for tag, (model, _, _) in results.items():
            print(f"\nstreaming benchmark, {tag}:", flush=True)
            subprocess.run([sys.executable, "-m", "benchmarks.streaming", "--model", str(model)]
                           + (["--data-dir", str(args.data_dir)] if args.data_dir else []), cwd=REPO_ROOT)
    return 0


def made_by_this_benchmark(folder: Path) -> bool:
    """Whether clearing ``folder`` loses nothing: it is empty or carries the mark a run leaves (a folder
    of the same layout without it may be a user's own words: ``dataset/`` is what training reads)."""
    return (folder / WORK_DIR_MARK).is_file() or not any(folder.iterdir())


def _pink(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    from train.kws.acoustics import coloured_noise

    return coloured_noise("pink", num_samples, rng)


if __name__ == "__main__":
    run_command(main)
