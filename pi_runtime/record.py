"""Record your own keyword: one-second clips of one word, ready to train on.

``python -m pi_runtime.record --label WORD --count N --out DIR`` prompts on the
terminal and records a take from the microphone each time Enter is pressed.
Each take is trimmed to one second centred on the speech in it, or rejected
with the reason (silent, too quiet, clipped, cut off at the start or end,
longer than a second) and asked for again. Kept takes are written as 16 kHz
mono 16-bit WAVs ``DIR/WORD/<speaker>_nohash_<n>.wav``: the Speech Commands
layout, so ``DIR`` is a dataset folder that ``train.kws.folder_data`` reads and
splits by speaker (the part of the name before ``_nohash_``). ``n`` continues
after the files already there; nothing is overwritten.

``--from-recording long.wav`` does the same with one long recording of the
word said again and again, split at the pauses. ``--background SECONDS``
records (or, with ``--from-recording``, copies) the room's own sound to
``DIR/_background_noise_/`` for negatives and noise mixing.

How speech is found (:func:`process_take`, :func:`split_recording`: pure
functions of the audio). The audio is resampled to 16 kHz
(:func:`native.resample.resample_poly`) and cut into 10 ms frames; a frame is
speech when its RMS level is ``above_background_db`` over the background
(the 10th percentile of the frame levels). Speech separated by less than
``min_pause_ms`` is one word; bursts shorter than ``min_word_ms`` are clicks
and ignored. The clip is the second centred on the word (shifted to stay
inside the recording when the recording does not reach half a second either
side; the word stays whole). A take is rejected when it has no speech
("silent"), its loudest frame is under ``min_level_dbfs`` ("too quiet"), the
clip would hold more than ``max_clipped_samples`` samples at full scale in the
recorded audio ("clipped"), speech is within ``edge_margin_ms`` of the start
or end of the recording ("cut off"), the word lasts over a second ("too
long"), or, in a long recording, the clip would hold part of another word
("crowded").
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, TextIO, Tuple

import numpy as np

from native.resample import ratio_for, resample_poly
from pi_runtime.arguments import run_command
from pi_runtime.wav import read_wav, write_wav

SAMPLE_RATE_HZ = 16000
CLIP_SAMPLES = 16000  # one second at SAMPLE_RATE_HZ
FRAME_SAMPLES = 160   # 10 ms at SAMPLE_RATE_HZ: the resolution of the energy envelope
BACKGROUND_PERCENTILE = 10.0
LEVEL_FLOOR_DBFS = -120.0  # the level of digital silence (instead of -inf)
FULL_SCALE = 32767 / 32768  # a sample at or beyond this is clipped
BACKGROUND_FOLDER = "_background_noise_"
NOHASH = "_nohash_"
DEFAULT_COUNT = 20


@dataclass(frozen=True)
class TakeSettings:
    """How words are found in a recording and when a take is rejected (see the module's docstring)."""

    min_level_dbfs: float = -45.0
    above_background_db: float = 15.0
    min_pause_ms: float = 300.0
    min_word_ms: float = 60.0
    edge_margin_ms: float = 30.0
    max_clipped_samples: int = 2

    def __post_init__(self) -> None:
        if not self.above_background_db > 0:
            raise ValueError(f"above_background_db must be positive, got {self.above_background_db}")
        for name in ("min_pause_ms", "min_word_ms", "edge_margin_ms"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 ms, got {getattr(self, name)}")
        if self.max_clipped_samples < 0:
            raise ValueError(f"max_clipped_samples must be >= 0, got {self.max_clipped_samples}")


@dataclass(frozen=True)
class Take:
    """One word found in a recording: its one-second clip, or why it was rejected.

    Attributes
    ----------
    start_s, end_s : float
        Where the speech lies in the recording, seconds (both 0 when none was found).
    clip : int16[CLIP_SAMPLES] or None
        The 16 kHz clip centred on the speech; None when rejected.
    problem : str or None
        None when accepted, else one of "silent", "too quiet", "clipped", "cut off",
        "too long", "crowded" (or "lost samples" for a microphone take with a gap).
    reason : str
        What was found (accepted) or what went wrong and what to do (rejected).
    """

    start_s: float
    end_s: float
    clip: Optional[np.ndarray]
    problem: Optional[str]
    reason: str

    @property
    def accepted(self) -> bool:
        return self.problem is None


# -- finding speech --------------------------------------------------------------------------
def to_16k(audio: np.ndarray, rate_hz: int) -> np.ndarray:
    """Mono int16 or float32 audio at ``rate_hz`` as float32 at 16 kHz (int16 scaled by 1/32768)."""
    up, down = ratio_for(rate_hz, SAMPLE_RATE_HZ)
    return resample_poly(audio, up, down)


def frame_levels_dbfs(audio_16k: np.ndarray) -> np.ndarray:
    """RMS level of each whole 10 ms frame, dB full scale (float32[frames], at least LEVEL_FLOOR_DBFS)."""
    frames = audio_16k[: audio_16k.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), LEVEL_FLOOR_DBFS).astype(np.float32)


def true_runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """``[start, end)`` of each run of consecutive true values of the 1-D ``mask``."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def speech_runs(is_speech: np.ndarray, *, min_pause_frames: int, min_word_frames: int) -> List[Tuple[int, int]]:
    """Words as ``[start, end)`` frame ranges: runs of speech frames joined across pauses shorter than
    ``min_pause_frames``, runs shorter than ``min_word_frames`` dropped."""
    joined: List[Tuple[int, int]] = []
    for start, end in true_runs(is_speech):
        if joined and start - joined[-1][1] < min_pause_frames:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return [(start, end) for start, end in joined if end - start >= min_word_frames]


class _Recording:
    """A recording at its own rate and at 16 kHz, with its envelope and speech threshold."""

    def __init__(self, audio: np.ndarray, rate_hz: int, settings: TakeSettings) -> None:
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
        self.settings = settings
        self.rate_hz = int(rate_hz)
        audio = audio if audio.dtype == np.int16 else audio.astype(np.float32, copy=False)
        self.original = audio.astype(np.float32) / 32768 if audio.dtype == np.int16 else audio
        self.audio_16k = to_16k(audio, rate_hz)
        self.levels = frame_levels_dbfs(self.audio_16k)
        self.background_dbfs = float(np.percentile(self.levels, BACKGROUND_PERCENTILE)) if self.levels.size \
            else LEVEL_FLOOR_DBFS
        self.threshold_dbfs = self.background_dbfs + settings.above_background_db
        frames_per_ms = SAMPLE_RATE_HZ / FRAME_SAMPLES / 1000
        self.words = speech_runs(self.levels > self.threshold_dbfs,
                                 min_pause_frames=int(np.ceil(settings.min_pause_ms * frames_per_ms)),
                                 min_word_frames=int(np.ceil(settings.min_word_ms * frames_per_ms)))

    def silent_take(self) -> Take:
        loudest = float(self.levels.max()) if self.levels.size else LEVEL_FLOOR_DBFS
        return Take(0.0, 0.0, None, "silent",
                    f"no speech: the loudest 10 ms is at {loudest:.0f} dBFS, {loudest - self.background_dbfs:.0f} dB "
                    f"over the background ({self.background_dbfs:.0f} dBFS); say the word after the prompt")

    def take(self, start_frame: int, end_frame: int) -> Take:
        """The word in frames ``[start_frame, end_frame)``: its clip, or why not."""
        settings = self.settings
        start, end = start_frame * FRAME_SAMPLES, end_frame * FRAME_SAMPLES
        start_s, end_s = start / SAMPLE_RATE_HZ, end / SAMPLE_RATE_HZ
        where = f"speech from {start_s:.2f} s to {end_s:.2f} s"

        def rejected(problem: str, reason: str) -> Take:
            return Take(start_s, end_s, None, problem, f"{reason} ({where})")

        margin = int(round(settings.edge_margin_ms * SAMPLE_RATE_HZ / 1000))
        if start < margin or end > self.audio_16k.size - margin:
            side = "start" if start < margin else "end"
            return rejected("cut off", f"cut off: the speech touches the {side} of the recording; "
                                       "wait for the prompt and stop before the recording does")
        if end - start > CLIP_SAMPLES:
            return rejected("too long", f"too long: {(end - start) / SAMPLE_RATE_HZ:.2f} s of speech does not fit "
                                        "a one-second clip; one short word per take")
        loudest = float(self.levels[start_frame:end_frame].max())
        if loudest < settings.min_level_dbfs:
            return rejected("too quiet", f"too quiet: the loudest 10 ms is at {loudest:.0f} dBFS, under "
                                         f"{settings.min_level_dbfs:g} dBFS; speak up or move closer")
        clip_start = self._clip_start(start, end)
        first = int(np.floor(clip_start * self.rate_hz / SAMPLE_RATE_HZ))
        last = int(np.ceil((clip_start + CLIP_SAMPLES) * self.rate_hz / SAMPLE_RATE_HZ))
        clipped = int(np.count_nonzero(np.abs(self.original[first:last]) >= FULL_SCALE))
        if clipped > settings.max_clipped_samples:
            return rejected("clipped", f"clipped: {clipped} samples at full scale; speak softer, further from "
                                       "the microphone, or turn its gain down")
        for other_start, other_end in self.words:
            other = (other_start * FRAME_SAMPLES, other_end * FRAME_SAMPLES)
            inside = start <= other[0] and other[1] <= end  # part of this take's speech
            if not inside and other[0] < clip_start + CLIP_SAMPLES and other[1] > clip_start:
                return rejected("crowded", f"crowded: its one-second clip would hold part of the speech at "
                                           f"{other[0] / SAMPLE_RATE_HZ:.2f} s; pause longer between words")
        clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
        piece = self.audio_16k[clip_start:clip_start + CLIP_SAMPLES]
        clip[: piece.size] = piece
        return Take(start_s, end_s, to_int16(clip), None,
                    f"{where}, {end_s - start_s:.2f} s long, loudest 10 ms at {loudest:.0f} dBFS")

    def _clip_start(self, start: int, end: int) -> int:
        """First sample of the second centred on ``[start, end)``, kept inside the recording when it is long enough."""
        centred = int(round((start + end) / 2)) - CLIP_SAMPLES // 2
        return int(np.clip(centred, 0, max(0, self.audio_16k.size - CLIP_SAMPLES)))


def to_int16(audio: np.ndarray) -> np.ndarray:
    """float32 audio in [-1, 1] as int16, rounded, saturated at full scale."""
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def process_take(audio: np.ndarray, rate_hz: int, *, settings: TakeSettings = TakeSettings()) -> Take:
    """One take (a recording meant to hold one word): its one-second clip centred on the speech, or why not.

    Parameters
    ----------
    audio : int16 or float32 ndarray, shape (samples,)
        Mono audio at ``rate_hz`` (float32 in [-1, 1]; int16 scaled by 1/32768).
    rate_hz : int
        Sample rate of ``audio``, Hz; resampled to 16 kHz.

    Returns
    -------
    Take
        Its ``clip`` (int16[16000] at 16 kHz) spans all the speech in the take.
    """
    recording = _Recording(audio, rate_hz, settings)
    if not recording.words:
        return recording.silent_take()
    return recording.take(recording.words[0][0], recording.words[-1][1])


def split_recording(audio: np.ndarray, rate_hz: int, *, settings: TakeSettings = TakeSettings()) -> List[Take]:
    """The words of one long recording, split at the pauses: one :class:`Take` per word, in order.

    Parameters as :func:`process_take`. A recording with no speech gives one
    rejected take ("silent").
    """
    recording = _Recording(audio, rate_hz, settings)
    if not recording.words:
        return [recording.silent_take()]
    return [recording.take(start, end) for start, end in recording.words]


# -- files ---------------------------------------------------------------------------------------
def default_speaker() -> str:
    """A stable speaker id: the user name hashed to 8 hex digits (like the Speech Commands speaker ids)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment nor the password database
        raise ValueError("cannot tell who is speaking (no user name); pass --speaker NAME") from None
    return hashlib.sha1(user.encode()).hexdigest()[:8]


def check_name(name: str, what: str) -> str:
    """``name`` when it is a plain file-name part (letters, digits, ``.``, ``-``, ``_``; not starting with ``_`` or ``.``)."""
    if not re.fullmatch(r"[^\W_][\w.-]*", name or "") or NOHASH in name:
        raise ValueError(f"{what} {name!r} must be letters, digits, '.', '-' or '_', not start with '_' or '.', "
                         f"and not contain {NOHASH!r}")
    return name


def next_index(folder: Path, prefix: str) -> int:
    """One past the largest ``n`` of the files ``<prefix><n>.wav`` in ``folder`` (0 when there are none)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.wav")
    names = [path.name for path in Path(folder).iterdir()] if Path(folder).is_dir() else []
    return max((int(match.group(1)) for name in names if (match := pattern.fullmatch(name))), default=-1) + 1


def save_clip(folder: Path, prefix: str, samples: np.ndarray) -> Path:
    """Write 16 kHz int16 ``samples`` as ``folder/<prefix><n>.wav`` with the next free ``n``; never overwrites."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = next_index(folder, prefix)
    while True:
        path = folder / f"{prefix}{index}.wav"
        try:
            path.open("xb").close()  # claims the name; a file that appeared meanwhile is kept
        except FileExistsError:
            index += 1
            continue
        write_wav(path, samples, SAMPLE_RATE_HZ)
        return path


# -- command line --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pi_runtime.record",
        usage="%(prog)s --label WORD --out DIR [--count N] [--from-recording LONG.wav] [options]\n"
              "       %(prog)s --background SECONDS --out DIR [--from-recording ROOM.wav]\n"
              "       %(prog)s --list-devices",
        description="Record one-second clips of a word (trimmed and centred on the speech; silent, too quiet, "
                    "clipped, cut-off and too-long takes are rejected with the reason) as 16 kHz mono 16-bit WAVs "
                    "DIR/WORD/<speaker>_nohash_<n>.wav, a dataset folder for python -m train.kws.",
        epilog="Example: python -m pi_runtime.record --label marvin --count 30 --out my_words")
    parser.add_argument("--label", metavar="WORD", help="the word (its folder under --out)")
    parser.add_argument("--count", type=int, default=None,
                        help=f"takes to keep (default {DEFAULT_COUNT} from the microphone; every word found with "
                             "--from-recording)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="the dataset folder to write into (created if needed)")
    parser.add_argument("--speaker", help="speaker id in the file names, which keeps a speaker's clips in one split "
                                          "(default: your user name hashed to 8 hex digits)")
    parser.add_argument("--from-recording", type=Path, metavar="FILE.wav",
                        help="split one long 16-bit mono WAV (any rate) of the word said again and again, with "
                             "pauses, instead of using the microphone; with --background: copy room sound from it")
    parser.add_argument("--background", type=float, metavar="SECONDS",
                        help="record this many seconds of the room's own sound (stay quiet) to "
                             f"DIR/{BACKGROUND_FOLDER}/ instead of words")
    parser.add_argument("--take-seconds", type=float, default=2.0,
                        help="length of each microphone take, s (default 2: room to centre a one-second clip on "
                             "the word)")
    parser.add_argument("--device", help="input device (index or name substring; see --list-devices)")
    parser.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    parser.add_argument("--mic-rate", type=int,
                        help="capture rate, Hz (default: the device's native rate, often 48000)")
    defaults = TakeSettings()
    parser.add_argument("--min-level-dbfs", type=float, default=defaults.min_level_dbfs,
                        help=f"a word's loudest 10 ms must reach this level, dB full scale "
                             f"(default {defaults.min_level_dbfs:g})")
    parser.add_argument("--min-pause-ms", type=float, default=defaults.min_pause_ms,
                        help=f"quiet stretches at least this long separate words, ms (default {defaults.min_pause_ms:g})")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with status 2 and the reason for inconsistent options."""
    if args.background is not None:
        if args.label is not None or args.count is not None:
            parser.error("--background records room sound, not words: leave out --label and --count "
                         "(record the background and the words in separate runs)")
        if not args.background > 0:
            parser.error(f"--background must be a positive number of seconds, got {args.background:g}")
    elif args.label is None:
        parser.error("--label WORD is required (or --background SECONDS, or --list-devices)")
    if args.out is None:
        parser.error("--out DIR is required: the dataset folder to write into")
    if args.count is not None and args.count < 1:
        parser.error(f"--count must be >= 1, got {args.count}")
    if not args.take_seconds > 0:
        parser.error(f"--take-seconds must be positive, got {args.take_seconds:g}")
    if args.mic_rate is not None and args.mic_rate < 1:
        parser.error(f"--mic-rate must be a positive rate in Hz, got {args.mic_rate}")
    if args.from_recording is not None and not args.from_recording.is_file():
        parser.error(f"--from-recording {args.from_recording}: no such file")


class Microphone:
    """Takes of a fixed length from an input device, through pi_runtime.listen's capture."""

    def __init__(self, device: Optional[str], *, rate_hz: Optional[int], out: TextIO) -> None:
        from pi_runtime.listen import MicrophoneSource

        self._open = lambda buffer_ms: MicrophoneSource(
            int(device) if device is not None and device.isdigit() else device,
            buffer_ms=buffer_ms, chunk_ms=50.0, sample_rate_hz=rate_hz)
        source = self._open(100.0)  # unknown devices and rates are refused before the first prompt
        self.rate_hz, self.description = source.rate_hz, source.description
        source.close()
        print(f"recording from {self.description}", file=out)

    def record(self, seconds: float) -> np.ndarray:
        """``seconds`` of float32 audio at ``rate_hz``.

        Raises
        ------
        ValueError
            When samples were lost on the way (the take would have a gap).
        """
        needed = int(round(seconds * self.rate_hz))
        source = self._open(1000.0 * seconds + 1000.0)
        parts, received = [], 0
        try:
            for chunk in source.chunks():
                parts.append(chunk)
                received += chunk.size
                if received >= needed:
                    break
        finally:
            source.close()
        if source.overrun_samples or source.callback_overflows:
            raise ValueError(f"the take lost samples ({source.overrun_samples} dropped, "
                             f"{source.callback_overflows} overflows reported by the device)")
        return np.concatenate(parts)[:needed]


def record_words(args: argparse.Namespace, folder: Path, prefix: str, *, settings: TakeSettings,
                 stdin: TextIO, out: TextIO, saved: List[Path], problems: Counter) -> None:
    """Prompt, record and judge takes until ``--count`` are kept (or stdin ends), appending to ``saved``
    and counting rejections by problem in ``problems``."""
    microphone = Microphone(args.device, rate_hz=args.mic_rate, out=out)
    count = args.count or DEFAULT_COUNT
    while len(saved) < count:
        print(f"[{len(saved) + 1}/{count}] press Enter, then say {args.label!r} "
              f"(you have {args.take_seconds:g} s) ", end="", file=out, flush=True)
        if not stdin.readline():
            print("\n(end of input)", file=out)
            break
        try:
            take = process_take(microphone.record(args.take_seconds), microphone.rate_hz, settings=settings)
        except ValueError as error:  # samples lost: the take is not trusted
            take = Take(0.0, 0.0, None, "lost samples", str(error))
        if take.accepted:
            saved.append(save_clip(folder, prefix, take.clip))
            print(f"  saved {saved[-1]}: {take.reason}", file=out)
        else:
            problems[take.problem] += 1
            print(f"  rejected, {take.reason}; again", file=out)


def split_words(args: argparse.Namespace, folder: Path, prefix: str, *, settings: TakeSettings,
                out: TextIO, saved: List[Path], problems: Counter) -> None:
    """The words of ``--from-recording``, the first ``--count`` accepted ones saved (as :func:`record_words`)."""
    samples, rate_hz = read_wav(args.from_recording)
    if samples.size == 0:
        raise ValueError(f"{args.from_recording}: holds no samples")
    takes = split_recording(samples, rate_hz, settings=settings)
    print(f"{args.from_recording}: {samples.size / rate_hz:.1f} s at {rate_hz} Hz, {len(takes)} "
          f"stretch{'' if len(takes) == 1 else 'es'} of speech", file=out)
    for number, take in enumerate(takes, start=1):
        if args.count is not None and len(saved) == args.count:
            print(f"  --count {args.count} reached: the remaining {len(takes) - number + 1} left out", file=out)
            break
        if take.accepted:
            saved.append(save_clip(folder, prefix, take.clip))
            print(f"  {number}: saved {saved[-1].name}: {take.reason}", file=out)
        else:
            problems[take.problem] += 1
            print(f"  {number}: rejected, {take.reason}", file=out)


def save_background(args: argparse.Namespace, prefix: str, *, stdin: TextIO, out: TextIO) -> Path:
    """``--background``: room sound, from the microphone or the start of ``--from-recording``, at 16 kHz."""
    if args.from_recording is not None:
        samples, rate_hz = read_wav(args.from_recording)
        kept = min(samples.size, int(round(args.background * rate_hz)))
        print(f"{args.from_recording}: copying {kept / rate_hz:.1f} s of {samples.size / rate_hz:.1f} s "
              f"at {rate_hz} Hz", file=out)
        audio = samples[:kept]
    else:
        microphone = Microphone(args.device, rate_hz=args.mic_rate, out=out)
        print(f"press Enter, then stay quiet for {args.background:g} s ", end="", file=out, flush=True)
        if not stdin.readline():
            raise ValueError("no input: nothing recorded")
        audio, rate_hz = microphone.record(args.background), microphone.rate_hz
    if audio.size == 0:
        raise ValueError(f"{args.from_recording}: holds no audio")
    path = save_clip(Path(args.out) / BACKGROUND_FOLDER, prefix, to_int16(to_16k(audio, rate_hz)))
    print(f"saved {path} ({audio.size / rate_hz:.1f} s at {SAMPLE_RATE_HZ} Hz)", file=out)
    return path


def summary(label: str, folder: Path, saved: Sequence[Path], problems: Counter) -> str:
    rejected = sum(problems.values())
    reasons = ", ".join(f"{count} {problem}" for problem, count in problems.most_common())
    names = f" ({saved[0].name} .. {saved[-1].name})" if saved else ""
    return (f"summary: {len(saved)} takes of {label!r} saved in {folder}{names}; "
            f"{rejected} rejected{': ' + reasons if rejected else ''}")


def main(argv: Optional[Sequence[str]] = None, *, stdin: Optional[TextIO] = None,
         out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    try:
        if args.list_devices:
            from pi_runtime.listen import list_devices

            list_devices(out)
            return 0
        check_args(parser, args)
        settings = TakeSettings(min_level_dbfs=args.min_level_dbfs, min_pause_ms=args.min_pause_ms)
        speaker = check_name(args.speaker, "--speaker") if args.speaker is not None else default_speaker()
        if args.background is not None:
            save_background(args, f"{speaker}_room_", stdin=stdin, out=out)
            return 0
        folder = Path(args.out) / check_name(args.label, "--label")
    except KeyboardInterrupt:
        print("\n(stopped by Ctrl-C)", file=err)
        return 0
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=err)
        return 2
    saved: List[Path] = []
    problems: Counter = Counter()
    collect = dict(settings=settings, out=out, saved=saved, problems=problems)
    try:
        if args.from_recording is not None:
            split_words(args, folder, f"{speaker}{NOHASH}", **collect)
        else:
            record_words(args, folder, f"{speaker}{NOHASH}", stdin=stdin, **collect)
    except KeyboardInterrupt:
        print("\n(stopped by Ctrl-C; the takes saved so far are kept)", file=err)
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=err)
        return 2
    finally:
        print(summary(args.label, folder, saved, problems), file=out)
    if args.from_recording is not None and not saved:
        print(f"error: no word of {args.from_recording} was kept (the lines above say why)", file=err)
        return 1
    return 0


if __name__ == "__main__":
    run_command(main)
