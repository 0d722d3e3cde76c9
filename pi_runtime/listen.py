"""Listen for keywords: microphone, WAV file or raw PCM on stdin.

``python -m pi_runtime.listen --model models/kws/kws_a.tflite`` captures the
default microphone at its native rate (often 48 kHz on a USB microphone) and
prints every keyword it hears with its time and score. The audio callback only
writes into a native ring buffer (it never blocks or waits for the consumer); the
main thread reads the ring and runs the streaming pipeline of
:mod:`pi_runtime.kws_pipeline`. Samples dropped because the consumer fell
behind are counted and reported.

Without a microphone::

    python -m pi_runtime.listen --model M --input speech.wav [--realtime]
    arecord -t raw -f S16_LE -r 16000 -c 1 | python -m pi_runtime.listen --model M --input -

Detections go to stdout (``--json``: one JSON object per line); the status
line (TTY only) and the summary go to stderr. At the end of a file or of stdin
the last window is decided (:meth:`KeywordSpotter.flush`); a microphone stopped
by Ctrl-C is not flushed (the recording was cut, not finished).

The detector's settings come from the command line, else from the model's
sidecar (its ``"detector"`` section, calibrated by ``python -m
train.kws.calibrate``), else from :class:`DetectorConfig`'s defaults.

``--keywords go,stop`` listens for some of the model's keywords only: the
others never fire, and a window where one of them leads fires nothing, as if
it were ``_unknown_`` (an eight-word open-set model becomes a go/stop spotter
that ignores other speech). The sidecar's settings calibrated for that subset
(``python -m train.kws.calibrate --keywords go,stop``) are used when it has them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import BinaryIO, Iterator, List, Optional, Sequence, TextIO, Union

import numpy as np

from native.ring import AudioRing
from pi_runtime.arguments import add_builtin_kernels_argument, output_folder, run_command
from pi_runtime.kws_pipeline import Detection, DetectorConfig, KeywordSpotter
from pi_runtime.labels import keyword_list
from pi_runtime.model import load_model
from pi_runtime.sidecar import MAX_SMOOTHING_WINDOWS, KwsSpec
from pi_runtime.wav import read_wav, write_wav

STATUS_INTERVAL_S = 0.5
SAVED_BEFORE_WINDOW_S = 0.5  # a saved detection: its one-second window and the half second before it
# The model used without --model: the delivered open-set model (it can answer "none of my
# words"), found beside the package in a checkout; None would make --model required.
_DELIVERED_OPEN_SET = Path(__file__).resolve().parent.parent / "models" / "kws" / "kws_live_c.tflite.zlib"
DEFAULT_MODEL: Optional[str] = str(_DELIVERED_OPEN_SET) if _DELIVERED_OPEN_SET.is_file() else None
# Command-line flag of each detector setting.
DETECTOR_FLAGS = {"threshold": "--threshold", "smoothing_windows": "--smoothing-windows", "hop_ms": "--hop-ms",
                  "refractory_ms": "--refractory-ms", "min_level_dbfs": "--min-level-dbfs",
                  "temperature": "--temperature"}


# -- audio sources -------------------------------------------------------------------------
class WavSource:
    """A 16-bit mono WAV file, in chunks, as fast as possible or paced in real time."""

    overrun_samples = 0
    callback_overflows = 0

    def __init__(self, path: str, *, chunk_ms: float, realtime: bool) -> None:
        self.samples, self.rate_hz = read_wav(path)
        self.description = f"{path} ({self.samples.size / self.rate_hz:.2f} s at {self.rate_hz} Hz)"
        self._chunk_samples = max(1, int(self.rate_hz * chunk_ms / 1000))
        self._realtime = realtime

    def chunks(self) -> Iterator[np.ndarray]:
        start_s = time.monotonic()
        for start in range(0, self.samples.size, self._chunk_samples):
            if self._realtime:  # release each chunk when it would have been recorded
                delay_s = start_s + (start + self._chunk_samples) / self.rate_hz - time.monotonic()
                if delay_s > 0:
                    time.sleep(delay_s)
            yield self.samples[start:start + self._chunk_samples]

    def close(self) -> None:
        pass


class RawPcmSource:
    """Raw signed 16-bit little-endian mono PCM from a byte stream (``--input -``)."""

    overrun_samples = 0
    callback_overflows = 0

    def __init__(self, stream: BinaryIO, *, rate_hz: int, chunk_ms: float) -> None:
        self._stream = stream
        self.rate_hz = rate_hz
        self.description = f"raw S16_LE mono PCM on stdin at {rate_hz} Hz"
        self._chunk_bytes = 2 * max(1, int(rate_hz * chunk_ms / 1000))
        self.trailing_bytes = 0

    def chunks(self) -> Iterator[np.ndarray]:
        pending = b""
        while True:
            data = self._stream.read(self._chunk_bytes)
            if not data:
                break
            data = pending + data
            usable = len(data) - len(data) % 2  # a pipe may split a sample between reads
            pending = data[usable:]
            if usable:
                yield np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
        self.trailing_bytes = len(pending)

    def close(self) -> None:
        pass


def import_sounddevice():
    """``sounddevice``, or a ValueError saying what to install."""
    try:
        import sounddevice
    except ImportError:
        raise ValueError("live listening needs the sounddevice package: pip install sounddevice "
                         "(or pip install 'tinyml-pi[pi]'); without a microphone use --input FILE.wav or --input -") from None
    except OSError as error:  # the package is there, the PortAudio library is not
        raise ValueError(f"sounddevice cannot load PortAudio ({error}); on Raspberry Pi OS / Debian: "
                         "sudo apt install libportaudio2") from None
    return sounddevice


class MicrophoneSource:
    """PortAudio capture at the device's native rate into a native AudioRing.

    The callback runs on PortAudio's thread and only writes into the ring;
    :meth:`chunks` (the consumer, main thread) reads what has arrived.
    """

    def __init__(self, device, *, buffer_ms: float, chunk_ms: float, sample_rate_hz: Optional[int] = None) -> None:
        sd = import_sounddevice()
        try:
            info = sd.query_devices(device, "input")
        except Exception as error:  # sounddevice raises ValueError or PortAudioError for unknown devices
            raise ValueError(f"no such input device {device!r} ({error}); see --list-devices") from None
        self.rate_hz = int(sample_rate_hz or info["default_samplerate"])
        self.description = f"microphone {info['name']!r} at {self.rate_hz} Hz"
        self.ring = AudioRing(max(1, int(self.rate_hz * buffer_ms / 1000)))
        self.callback_overflows = 0
        self._chunk_samples = max(1, int(self.rate_hz * chunk_ms / 1000))
        self._poll_s = chunk_ms / 4000.0
        self._started = False
        try:
            self._stream = sd.InputStream(device=device, samplerate=self.rate_hz, channels=1,
                                          dtype="float32", callback=self._callback)
        except Exception as error:
            raise ValueError(f"cannot open {self.description}: {error}") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        if status:  # PortAudio's own input overflow (the OS lost samples before we saw them)
            self.callback_overflows += 1
        self.ring.write(indata)

    @property
    def overrun_samples(self) -> int:
        return self.ring.overrun_samples

    def chunks(self) -> Iterator[np.ndarray]:
        self._stream.start()
        self._started = True
        while True:
            chunk = self.ring.read(self._chunk_samples)
            if chunk.size:
                yield chunk
            else:
                time.sleep(self._poll_s)

    def close(self) -> None:
        if self._started:
            self._stream.stop()
        self._stream.close()


def list_devices(out: TextIO) -> None:
    sd = import_sounddevice()
    print(sd.query_devices(), file=out)


# -- saving what fired -------------------------------------------------------------------
class RecentAudio:
    """The last ``seconds`` of the input, as int16, to cut a detection's audio from."""

    def __init__(self, seconds: float, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self._buffer = np.zeros(max(1, int(np.ceil(seconds * rate_hz))), np.int16)
        self.total = 0  # samples written since the start

    def write(self, chunk: np.ndarray) -> None:
        samples = np.asarray(chunk).reshape(-1)
        if samples.dtype != np.int16:  # float audio in [-1, 1), as the microphone gives it: x/32768 of int16
            samples = np.clip(np.round(samples.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
        capacity, count = self._buffer.size, samples.size
        kept = samples[-capacity:]  # of a chunk longer than the buffer, its end
        start = (self.total + count - kept.size) % capacity  # where the first sample kept belongs
        first = min(kept.size, capacity - start)
        self._buffer[start:start + first] = kept[:first]
        self._buffer[:kept.size - first] = kept[first:]
        self.total += count

    def between(self, start_s: float, end_s: float) -> np.ndarray:
        """The samples from ``start_s`` to ``end_s`` (input time), as far as they are still held."""
        capacity = self._buffer.size
        first = max(int(round(start_s * self.rate_hz)), self.total - capacity, 0)
        last = min(int(round(end_s * self.rate_hz)), self.total)
        indices = np.arange(first, max(first, last)) % capacity
        return self._buffer[indices]


class DetectionSaver:
    """Writes each detection's audio (its window and :data:`SAVED_BEFORE_WINDOW_S` before it) as a WAV
    file at the input rate: ``NNNNN_<time>s_<label>_<score>.wav`` (``time``: seconds into the input),
    to hear what fired. The numbers continue those already in the folder: nothing is overwritten."""

    def __init__(self, folder: Path, rate_hz: int, window_s: float, err: TextIO) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.recent = RecentAudio(window_s + SAVED_BEFORE_WINDOW_S + 1.0, rate_hz)
        self.err = err
        self.saved = 0
        self.failed = 0
        taken = [int(path.name.split("_")[0]) for path in self.folder.glob("*_*s_*.wav")
                 if path.name.split("_")[0].isdigit()]
        self._number = max(taken, default=0)

    def save(self, detection: Detection) -> None:
        audio = self.recent.between(detection.window_start_s - SAVED_BEFORE_WINDOW_S, detection.time_s)
        self._number += 1
        path = self.folder / f"{self._number:05d}_{detection.time_s:.2f}s_{detection.label}_{detection.score:.2f}.wav"
        try:
            write_wav(path, audio, self.recent.rate_hz)  # whole or not at all
            self.saved += 1
        except OSError as error:  # a full card: say so, keep listening
            self.failed += 1
            print(f"warning: could not save {path} ({error})", file=self.err, flush=True)


# -- reporting ---------------------------------------------------------------------------
class Reporter:
    """Prints detections (stdout), a status line (stderr, TTY only) and the summary."""

    def __init__(self, *, as_json: bool, out: TextIO, err: TextIO, show_status: bool) -> None:
        self.as_json = as_json
        self.out, self.err = out, err
        self.show_status = show_status
        self.detections = 0
        self._status_shown = False
        self._last_status = (time.monotonic(), time.process_time(), 0)
        self._overruns_reported = 0

    def detection(self, detection: Detection) -> None:
        self.detections += 1
        self._clear_status()
        if self.as_json:
            print(json.dumps(detection.to_dict()), file=self.out, flush=True)
        else:
            print(f"{detection.time_s:9.2f} s  {detection.label:<8s} score {detection.score:.2f}",
                  file=self.out, flush=True)

    def overruns(self, overrun_samples: int, rate_hz: int) -> None:
        """Warn (stderr) as soon as the ring buffer has dropped audio since the last warning."""
        if overrun_samples > self._overruns_reported:
            self._clear_status()
            print(f"warning: the ring buffer dropped {overrun_samples - self._overruns_reported} samples "
                  f"({1000 * (overrun_samples - self._overruns_reported) / rate_hz:.0f} ms): processing fell behind "
                  f"the audio ({overrun_samples} in all)", file=self.err, flush=True)
            self._overruns_reported = overrun_samples

    def status(self, spotter: KeywordSpotter, overrun_samples: int) -> None:
        if not self.show_status:
            return
        now, cpu_now, decisions_now = time.monotonic(), time.process_time(), spotter.decisions
        then, cpu_then, decisions_then = self._last_status
        if now - then < STATUS_INTERVAL_S:
            return
        self._last_status = (now, cpu_now, decisions_now)
        line = (f"level {spotter.level_dbfs:6.1f} dBFS | {(decisions_now - decisions_then) / (now - then):5.1f} "
                f"decisions/s | CPU {100 * (cpu_now - cpu_then) / (now - then):5.1f}% | "
                f"detections {self.detections} | overruns {overrun_samples}")
        print("\r" + line, end="", file=self.err, flush=True)
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            print("\r\033[K", end="", file=self.err, flush=True)
            self._status_shown = False

    def summary(self, spotter: KeywordSpotter, source, *, wall_s: float, cpu_s: float, interrupted: bool) -> None:
        self._clear_status()
        audio_s = spotter.seconds_in
        gated = spotter.decisions - spotter.invocations
        speed = f", {audio_s / wall_s:.1f}x real time" if wall_s > 0 else ""
        lines = [
            f"summary: {audio_s:.2f} s of audio from {source.description} in {wall_s:.2f} s{speed}"
            + (" (stopped by Ctrl-C)" if interrupted else ""),
            f"  {spotter.decisions} decisions every {1000 * spotter.hop_s:.0f} ms: {spotter.invocations} ran the "
            f"model, {gated} below the energy gate ({spotter.config.min_level_dbfs:g} dBFS)",
            f"  {self.detections} detections; CPU {cpu_s:.2f} s"
            + (f" ({1000 * cpu_s / audio_s:.1f} ms per second of audio)" if audio_s > 0 else ""),
            f"  overruns: {source.overrun_samples} samples dropped by the ring buffer, "
            f"{source.callback_overflows} input overflows reported by the audio device",
        ]
        if getattr(source, "trailing_bytes", 0):
            lines.append(f"  warning: the input ended with {source.trailing_bytes} byte(s) of an incomplete sample")
        print("\n".join(lines), file=self.err, flush=True)


# -- command line ------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    model_help = ("keyword-spotting model (.tflite or .tflite.zlib) with its sidecar; "
                  + (f"default {DEFAULT_MODEL}" if DEFAULT_MODEL else "required unless --list-devices"))
    parser = argparse.ArgumentParser(
        prog="python -m pi_runtime.listen",
        usage=("%(prog)s " + ("[--model MODEL]" if DEFAULT_MODEL else "--model MODEL")
               + " [--input FILE.wav|-] [options]\n       %(prog)s --list-devices"),
        description="Spot keywords live from a microphone, a WAV file or raw PCM on stdin, and print each "
                    "detection with its time (s) and score. Detector settings not given on the command line "
                    "come from the model's sidecar (its calibrated 'detector' section) when it has one, "
                    "else from the defaults shown.")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=model_help)
    parser.add_argument("--input", metavar="FILE.wav|-",
                        help="read a 16-bit mono WAV file (any rate: resampled), or '-' for raw S16_LE mono PCM "
                             "on stdin, instead of the microphone")
    parser.add_argument("--input-rate", type=int, default=16000,
                        help="sample rate of raw PCM on stdin, Hz (default 16000)")
    parser.add_argument("--realtime", action="store_true",
                        help="with --input FILE.wav: play the file at its real speed (default: as fast as possible)")
    parser.add_argument("--device", help="input device (index or name substring; see --list-devices)")
    parser.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    parser.add_argument("--mic-rate", type=int,
                        help="capture rate, Hz (default: the device's native rate, often 48000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per detection")
    parser.add_argument("--save-detections", type=output_folder, metavar="DIR",
                        help="write each detection's audio (its window, one second for the delivered models, and "
                             "the half second before it, at the input rate) as a WAV file into DIR, numbered on "
                             "from the files already there, to hear what fired")
    parser.add_argument("--keywords", type=keyword_list,
                        help="listen for these of the model's keywords only, comma-separated (e.g. go,stop); "
                             "the others are treated as _unknown_ (default: all of them)")
    defaults = DetectorConfig()
    parser.add_argument("--hop-ms", type=float,
                        help=f"time between model runs, ms: whole frames of the model's frontend (20 ms for the "
                             f"delivered models), at most one window (default: the sidecar's, else {defaults.hop_ms:g})")
    parser.add_argument("--threshold", type=float,
                        help="smoothed score needed for a detection, 0..1 (default: the sidecar's calibrated "
                             f"threshold, else {defaults.threshold:g})")
    parser.add_argument("--smoothing-windows", type=int,
                        help=f"posteriors averaged over this many windows, 1 to {MAX_SMOOTHING_WINDOWS} "
                             "(default: the sidecar's, "
                             f"else {defaults.smoothing_windows})")
    parser.add_argument("--refractory-ms", type=float,
                        help=f"quiet time after a detection, ms (default: the sidecar's, else {defaults.refractory_ms:g})")
    parser.add_argument("--min-level-dbfs", type=float,
                        help="energy gate: windows quieter than this (RMS, dB full scale) are not classified "
                             f"(default: the sidecar's, else {defaults.min_level_dbfs:g}; --min-level-dbfs=-inf "
                             "disables it)")
    parser.add_argument("--temperature", type=float,
                        help="each window's posteriors sharpened (below 1) or flattened (above 1) as a softmax at this "
                             "temperature would be, before they are averaged, 0.01 to 100; 1 takes them as the model "
                             f"gives them (default: the sidecar's, else {defaults.temperature:g})")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds of audio")
    parser.add_argument("--buffer-ms", type=float, default=2000.0,
                        help="capacity of the microphone ring buffer (default 2000 ms)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    add_builtin_kernels_argument(parser)
    parser.add_argument("--verbose", action="store_true",
                        help="print the model, interpreter, input, detector settings (and where each comes "
                             "from) and the calibration in use")
    return parser


def detector_config(args: argparse.Namespace, spec: Optional[KwsSpec]) -> DetectorConfig:
    """Flags given on the command line, then the sidecar's "detector" section (the one calibrated
    for ``--keywords`` when it has one), then the defaults."""
    return DetectorConfig.from_sidecar(spec, keywords=args.keywords,
                                       **{key: getattr(args, key) for key in DETECTOR_FLAGS})


def describe_detector(args: argparse.Namespace, config: DetectorConfig, spec: Optional[KwsSpec]) -> List[str]:
    """Lines for --verbose: each setting with where it came from, and the calibration behind the sidecar's."""
    from_sidecar = spec.detector_settings(args.keywords) if spec is not None else {}

    def origin(key):
        if getattr(args, key) is not None:
            return DETECTOR_FLAGS[key]
        return "sidecar" if key in from_sidecar else "default"
    units = {"threshold": "", "smoothing_windows": " windows", "hop_ms": " ms", "refractory_ms": " ms",
             "min_level_dbfs": " dBFS", "temperature": ""}
    settings = ", ".join(f"{key} {getattr(config, key):g}{units[key]} ({origin(key)})" for key in DETECTOR_FLAGS)
    lines = [f"detector: {settings}"]
    calibration = from_sidecar.get("calibration")
    if (args.keywords is not None and spec is not None and set(args.keywords) != set(spec.keywords)
            and not spec.calibrated_for(args.keywords)):
        lines.append(f"the sidecar has no calibration for {','.join(args.keywords)} alone: the settings "
                     "calibrated for all its keywords are used (python -m train.kws.calibrate --keywords "
                     "writes one)")
    if calibration:
        measured = calibration.get("measured", {})
        lines.append(f"calibration: target {calibration.get('target_false_alarms_per_hour')} false alarms/hour on "
                     f"{calibration.get('stream')}; measured there: "
                     + ", ".join(f"{key} {value}" for key, value in measured.items() if not isinstance(value, dict)))
    else:
        lines.append("calibration: none behind these settings (python -m train.kws.calibrate writes one)")
    room = from_sidecar.get("room")
    if room:
        minutes = sum(recording.get("seconds", 0.0) for recording in room.get("recordings", [])) / 60.0
        replaced = room.get("threshold_replaced")
        lines.append(f"tuned to a room (python -m pi_runtime.tune --write): threshold {from_sidecar.get('threshold')} "
                     f"in place of {'the default' if replaced is None else replaced}, for at most "
                     f"{room.get('target_false_alarms_per_hour')} false alarms an hour on {minutes:.1f} min of "
                     "recordings")
        detected = room.get("validation_keywords_detected_percent")
        if detected is not None:
            lines[-1] += f"; validation keywords detected {detected} %"
    return lines


def parse_device(text: Optional[str]) -> Union[int, str, None]:
    """A ``--device`` value as sounddevice takes it: an index (``"2"`` -> 2), a
    name substring (``"USB"``, surrounding spaces removed), or None (the default device).

    Raises
    ------
    ValueError
        For an empty name or a negative index.
    """
    if text is None:
        return None
    name = text.strip()
    if not name:
        raise ValueError("--device must be a device index or a name substring, got an empty string")
    if name.lstrip("-").isdigit():
        index = int(name)
        if index < 0:
            raise ValueError(f"--device index must be >= 0, got {index}")
        return index
    return name


def open_source(args: argparse.Namespace, stdin: BinaryIO, *, chunk_ms: float):
    if args.input == "-":
        if args.input_rate < 1:
            raise ValueError(f"--input-rate must be a positive rate in Hz, got {args.input_rate}")
        return RawPcmSource(stdin, rate_hz=args.input_rate, chunk_ms=chunk_ms)
    if args.input is not None:
        if Path(args.input).is_dir():
            raise ValueError(f"{args.input}: is a folder, not a WAV file")
        if not Path(args.input).is_file():
            raise ValueError(f"{args.input}: no such file")
        return WavSource(args.input, chunk_ms=chunk_ms, realtime=args.realtime)
    return MicrophoneSource(parse_device(args.device), buffer_ms=args.buffer_ms, chunk_ms=chunk_ms, sample_rate_hz=args.mic_rate)


def run(args: argparse.Namespace, *, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    model = load_model(args.model, num_threads=args.threads, require_sidecar=True, verbose=args.verbose,
                       builtin_kernels=args.builtin_kernels)
    config = detector_config(args, model.spec)
    if args.save_detections is not None:  # a folder that cannot be made or written is said before the microphone opens
        args.save_detections.mkdir(parents=True, exist_ok=True)
        if not os.access(args.save_detections, os.W_OK):
            raise PermissionError(f"--save-detections: cannot write into {args.save_detections}")
    source = open_source(args, stdin, chunk_ms=config.hop_ms)
    try:
        spotter = KeywordSpotter(model, input_rate_hz=source.rate_hz, config=config, keywords=args.keywords)
    except ValueError:  # e.g. a WAV file at an implausible rate: release a microphone already opened
        source.close()
        raise
    saver = (None if args.save_detections is None else
             DetectionSaver(args.save_detections, source.rate_hz, spotter.policy.window_duration_s, err))
    if args.verbose:
        declared = model.spec is not None and model.spec.output_kind is not None
        lines = [f"model: {model.describe()}", f"input: {source.description}",
                 f"labels: {', '.join(spotter.labels)}; keywords: {', '.join(spotter.keywords)}",
                 f"output: {spotter.output_kind} "
                 f"({'from the sidecar, checked against the graph' if declared else 'the sidecar does not say: read from the graph'})"]
        print("\n".join(lines + describe_detector(args, config, model.spec)), file=err)
    reporter = Reporter(as_json=args.json, out=out, err=err, show_status=err.isatty())
    wall_start, cpu_start = time.monotonic(), time.process_time()
    interrupted = False
    try:
        for chunk in source.chunks():
            if saver is not None:
                saver.recent.write(chunk)
            for detection in spotter.push(chunk):
                reporter.detection(detection)
                if saver is not None:
                    saver.save(detection)
            reporter.overruns(source.overrun_samples, source.rate_hz)
            reporter.status(spotter, source.overrun_samples)
            if args.seconds is not None and spotter.seconds_in >= args.seconds:
                break
        for detection in spotter.flush():  # the input ended: its last window is decided
            reporter.detection(detection)
            if saver is not None:
                saver.save(detection)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        source.close()
    reporter.summary(spotter, source, wall_s=time.monotonic() - wall_start,
                     cpu_s=time.process_time() - cpu_start, interrupted=interrupted)
    if saver is not None:
        print(f"  {saver.saved} detection(s) saved in {saver.folder}"
              + (f", {saver.failed} could not be written" if saver.failed else ""), file=err, flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None, *, stdin: Optional[BinaryIO] = None,
         out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr
    try:
        if args.list_devices:
            list_devices(out)
            return 0
        if not args.model:
            parser.error("--model is required (unless --list-devices): a keyword-spotting model with its sidecar")
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        if args.seconds is not None and not args.seconds > 0:
            parser.error("--seconds must be positive")
        if not args.buffer_ms > 0:
            parser.error("--buffer-ms must be positive")
        return run(args, stdin=stdin or sys.stdin.buffer, out=out, err=err)
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=err)
        return 2


if __name__ == "__main__":
    run_command(main)
