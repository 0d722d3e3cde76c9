"""Speed of the native audio frontend against its peers, on one 1 s 16 kHz clip.

Run::

    python -m benchmarks.frontend [--runs 300] [--warmup 20] [--clip path.wav]

Every pipeline computes the course's MFCCs (16 kHz, 640-sample frames every 320,
FFT 640, 40 mel bins 20-4000 Hz, 10 coefficients) of the same clip; peers that
cannot be configured identically (librosa, python_speech_features,
kaldi-native-fbank) get the nearest settings and are timed for the same work.
Also measured: the streaming cost of one 20 ms hop, and ``scipy.fft.rfft`` alone
on the same 49 windowed frames (the floor any FFT-based pipeline stands on).
Each line is the median of ``--runs`` timed calls (split into ``--rounds``
interleaved rounds over all pipelines, so a burst of load from other processes
does not land on one of them) after a warm-up.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from native.frontend import Frontend, StreamingFrontend, hann_window, mel_weight_matrix, mfcc_dct_matrix
from native.params import FrontendParams
from pi_runtime.arguments import non_negative_int, positive_int, run_command

PARAMS = FrontendParams()  # the course's configuration
# The names peers() gives the pipelines it times, whether installed here or not.
PEER_NAMES = ("tf.signal eager", "tf.signal tf.function", "numpy + scipy.fft", "librosa", "python_speech_features",
              "kaldi-native-fbank")


class Case:
    """One timed pipeline: `function` called `runs` times in all; times divided by `per_call`."""

    def __init__(self, section: str, name: str, function: Callable[[], object], runs: int, per_call: int = 1):
        self.section, self.name, self.function = section, name, function
        self.runs, self.per_call = max(1, runs), per_call
        self.times_ns: List[int] = []

    def warm_up(self, calls: int, seconds: float) -> None:
        start = time.perf_counter()
        done = 0
        while done < calls or time.perf_counter() - start < seconds:
            self.function()
            done += 1

    def run(self, calls: int) -> None:
        for _ in range(calls):
            start = time.perf_counter_ns()
            self.function()
            self.times_ns.append(time.perf_counter_ns() - start)

    @property
    def median_us(self) -> float:
        return statistics.median(self.times_ns) / 1000.0 / self.per_call


def run_interleaved(cases: List[Case], rounds: int, warmup: int, warmup_s: float) -> None:
    """Warm every case up, then time them in `rounds` interleaved rounds, so that a burst of
    load from other processes spreads over all cases instead of hitting one."""
    for case in cases:
        case.warm_up(warmup, warmup_s)
    for round_index in range(rounds):
        print(f"  timing round {round_index + 1}/{rounds}", file=sys.stderr, flush=True)
        for case in cases:
            share = case.runs // rounds + (1 if round_index < case.runs % rounds else 0)
            case.run(share)


def load_clip(path: Optional[str]) -> tuple:
    """int16[16000] and where it came from: --clip, a real clip under TINYML_DATA_DIR, or seeded noise;
    ValueError for a --clip that cannot be read or is not one second at 16 kHz."""
    from pi_runtime.wav import read_wav

    if path:
        audio, rate_hz = read_wav(path)
        if rate_hz != 16000 or len(audio) != 16000:
            raise ValueError(f"{path}: {len(audio)} samples at {rate_hz} Hz; --clip takes one second at 16 kHz "
                             "(16000 samples)")
        return audio, path
    data_dir = os.environ.get("TINYML_DATA_DIR")
    candidates = sorted((Path(data_dir) / "mini_speech_commands" / "yes").glob("*.wav"))[:50] if data_dir else []
    for candidate in candidates:
        audio, rate_hz = read_wav(candidate)
        if rate_hz == 16000 and len(audio) == 16000:
            return audio, str(candidate)
    rng = np.random.default_rng(0)
    return (rng.standard_normal(16000) * 3000).astype(np.int16), "seeded random noise (no real clip found)"


def numpy_scipy_pipeline():
    """The same features in a few vectorised numpy / scipy.fft lines (float32 throughout)."""
    import scipy.fft

    window = hann_window(PARAMS.frame_length_samples)
    mel = mel_weight_matrix(PARAMS)
    dct = mfcc_dct_matrix(PARAMS.num_mfccs, PARAMS.num_mel_bins).T.copy()

    def mfcc(audio: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(audio, PARAMS.frame_length_samples)
        frames = frames[::PARAMS.frame_step_samples] * window
        magnitude = np.abs(scipy.fft.rfft(frames, n=PARAMS.fft_length, axis=-1))
        return np.log(magnitude @ mel + np.float32(PARAMS.log_offset)) @ dct

    return mfcc


def tf_pipeline():
    import tensorflow as tf

    from pi_runtime.reference import tf_signal_features

    return tf, tf_signal_features(PARAMS)  # the project's one tf.signal pipeline


def peers(audio_f32: np.ndarray) -> Dict[str, Callable[[], object]]:
    """Callables computing the clip's MFCCs with each installed peer (missing ones are skipped)."""
    out: Dict[str, Callable[[], object]] = {}
    try:
        tf, mfcc = tf_pipeline()
        tensor = tf.constant(audio_f32)
        out["tf.signal eager"] = lambda: mfcc(tensor).numpy()
        compiled = tf.function(mfcc)
        out["tf.signal tf.function"] = lambda: compiled(tensor).numpy()
    except ImportError as error:
        print(f"  (skipping tf.signal: {error})")
    try:
        out["numpy + scipy.fft"] = (lambda f: lambda: f(audio_f32))(numpy_scipy_pipeline())
    except ImportError as error:
        print(f"  (skipping numpy/scipy: {error})")
    try:
        import librosa

        out["librosa"] = lambda: librosa.feature.mfcc(
            y=audio_f32, sr=16000, n_mfcc=10, n_fft=640, hop_length=320, win_length=640, window="hann",
            center=False, n_mels=40, fmin=20.0, fmax=4000.0, htk=True)
    except ImportError as error:
        print(f"  (skipping librosa: {error})")
    try:
        import python_speech_features

        out["python_speech_features"] = lambda: python_speech_features.mfcc(
            audio_f32, samplerate=16000, winlen=0.04, winstep=0.02, numcep=10, nfilt=40, nfft=640,
            lowfreq=20, highfreq=4000, preemph=0.0, ceplifter=0, appendEnergy=False, winfunc=np.hanning)
    except ImportError as error:
        print(f"  (skipping python_speech_features: {error})")
    try:
        import kaldi_native_fbank as knf

        options = knf.MfccOptions()
        options.frame_opts.samp_freq = 16000
        options.frame_opts.frame_length_ms = 40
        options.frame_opts.frame_shift_ms = 20
        options.frame_opts.dither = 0.0
        options.frame_opts.window_type = "hann"
        options.frame_opts.snip_edges = True
        options.mel_opts.num_bins = 40
        options.mel_opts.low_freq = 20
        options.mel_opts.high_freq = 4000
        options.num_ceps = 10

        def kaldi():
            extractor = knf.OnlineMfcc(options)
            extractor.accept_waveform(16000, audio_f32)
            extractor.input_finished()
            return np.stack([extractor.get_frame(i) for i in range(extractor.num_frames_ready)])

        out["kaldi-native-fbank"] = kaldi
    except ImportError as error:
        print(f"  (skipping kaldi-native-fbank: {error})")
    return out


def versions() -> Dict[str, str]:
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("scipy", "tensorflow", "librosa", "python_speech_features", "kaldi_native_fbank", "Cython"):
        try:
            module = __import__(name)
            found[name] = getattr(module, "__version__", "installed")
        except ImportError:
            found[name] = "not installed"
    return found


def peer_fragments(text: str) -> Optional[List[str]]:
    """``--peers``: None for "all" (every peer), [] for "none", else its lower-case name fragments, each part
    of some peer's name."""
    if text == "all":
        return None
    if text == "none":
        return []
    wanted = [word.strip().lower() for word in text.split(",") if word.strip()]
    unknown = [word for word in wanted if not any(word in name.lower() for name in PEER_NAMES)]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"no peer matches {', '.join(map(repr, unknown or [text]))} "
                                         f"(the peers: {', '.join(PEER_NAMES)}; or all, or none)")
    return wanted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frontend", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=positive_int, default=300, help="timed calls per pipeline (median reported)")
    parser.add_argument("--warmup", type=non_negative_int, default=20,
                        help="untimed calls before timing (and at least 0.3 s)")
    parser.add_argument("--rounds", type=positive_int, default=5,
                        help="interleaved timing rounds the runs are split into (spreads bursts of load)")
    parser.add_argument("--peers", type=peer_fragments, default="all",
                        help="comma-separated name fragments of the peers to time, e.g. 'numpy' or "
                             "'numpy,tf.function', or none (default: all; native and the rfft floor always run)")
    parser.add_argument("--clip", help="16 kHz mono 16-bit WAV of 16000 samples, refused otherwise (default: a "
                                       "real clip under $TINYML_DATA_DIR, else seeded noise)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        audio, source = load_clip(args.clip)
    except ValueError as error:  # an unreadable --clip, or one of another rate or length
        print(f"error: {error}", file=sys.stderr)
        return 2
    audio_f32 = audio.astype(np.float32) / 32768.0

    print("== versions")
    for name, version in versions().items():
        print(f"  {name:24s} {version}")
    print(f"  {'platform':24s} {platform.platform()} ({platform.machine()}, {os.cpu_count()} CPUs)")
    print("== configuration")
    print(f"  frontend   {PARAMS.to_json()}")
    print(f"  clip       {source}")
    print(f"  runs       {args.runs} timed per pipeline (fewer for the slowest), in {args.rounds} interleaved "
          f"rounds, after >= {args.warmup} warm-up calls and >= 0.3 s; median; one thread except compute_batch")
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        print(f"  {name:24s} {os.environ.get(name, '(unset)')}")
    sys.stdout.flush()

    frontend = Frontend(PARAMS)
    cases: List[Case] = []
    full, batch_section, streaming = ("full clip, course MFCCs (49 x 10)",
                                      "training-style batch: 256 clips through compute_batch, time per clip",
                                      "streaming: one 20 ms hop (320 samples -> 1 frame)")
    cases.append(Case(full, "native (float32 input)", lambda: frontend.compute(audio_f32), args.runs))
    cases.append(Case(full, "native (int16 input)", lambda: frontend.compute(audio), args.runs))
    for name, function in peers(audio_f32).items():
        if args.peers is not None and not any(word in name.lower() for word in args.peers):
            continue
        slow = name.startswith(("tf.signal eager", "librosa", "python_speech", "kaldi"))
        cases.append(Case(full, name, function, max(20, args.runs // 5) if slow else args.runs))
    import scipy.fft

    frames = np.lib.stride_tricks.sliding_window_view(audio_f32, PARAMS.frame_length_samples)
    frames = np.ascontiguousarray(frames[::PARAMS.frame_step_samples] * hann_window(PARAMS.frame_length_samples))
    floor_name = f"floor: scipy.fft.rfft of {len(frames)} frames"
    cases.append(Case(full, floor_name, lambda: scipy.fft.rfft(frames, axis=-1), args.runs))

    batch = np.repeat(audio[None, :], 256, axis=0)
    threads = os.cpu_count() or 1
    batch_runs = max(args.rounds, args.runs // 30)
    cases.append(Case(batch_section, "compute_batch, 1 thread",
                      lambda: frontend.compute_batch(batch, num_threads=1), batch_runs, len(batch)))
    cases.append(Case(batch_section, f"compute_batch, {threads} threads",
                      lambda: frontend.compute_batch(batch), batch_runs, len(batch)))

    stream = StreamingFrontend(PARAMS)
    hop = np.ascontiguousarray(audio[:PARAMS.frame_step_samples])
    stream.push(audio[:PARAMS.frame_length_samples])
    one_frame = np.ascontiguousarray(audio[:PARAMS.frame_length_samples])
    empty = np.zeros(0, np.int16)
    many = max(args.runs, 3000)
    cases.append(Case(streaming, "StreamingFrontend.push(hop)", lambda: stream.push(hop), many))
    cases.append(Case(streaming, "Frontend.compute(one frame)", lambda: frontend.compute(one_frame), many))
    cases.append(Case(streaming, "StreamingFrontend.push(empty)", lambda: stream.push(empty), many))

    run_interleaved(cases, args.rounds, args.warmup, warmup_s=0.3)

    results = {case.name: case.median_us for case in cases}
    section = None
    for case in cases:
        if case.section != section:
            section = case.section
            print(f"== {section}")
        print(f"  {case.name:34s} {results[case.name]:10.1f} us")
    print("== ratios (time / native float32 time)")
    native = results["native (float32 input)"]
    for name, value in results.items():
        print(f"  {name:34s} {value / native:8.2f}x")
    print("== goals")
    if "numpy + scipy.fft" in results:
        print(f"  native vs numpy/scipy pipeline: {results['numpy + scipy.fft'] / native:.2f}x faster (goal >= 3.5x)")
    print(f"  native vs bare scipy rfft floor: {native / results[floor_name]:.2f}x the floor (goal <= 1.5x)")
    print(f"  streaming hop: {results['StreamingFrontend.push(hop)']:.2f} us total; "
          f"Python-level overhead (push of an empty chunk) {results['StreamingFrontend.push(empty)']:.2f} us "
          "(goal: overhead < 3 us)")
    return 0


if __name__ == "__main__":
    run_command(main)
