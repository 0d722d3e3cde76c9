"""Speed of native.resample against scipy.signal.resample_poly (the course's resampler) and soxr.

One second of audio (noise, seeded) per call, as the device resamples per
decision. Prints versions and configuration first, then the median time per
call over the iterations, the ratio to native, and the largest difference from
scipy's float64 result (native and scipy compute the same filter; soxr uses
its own filter, so its difference is not an error).

    python -m benchmarks.resample [--iterations 200] [--warmup 10]
"""
from __future__ import annotations

import argparse
import platform
import time
from typing import Optional, Sequence

import numpy as np

import native
from native.resample import Resampler, ratio_for, resample_poly
from pi_runtime.arguments import non_negative_int, positive_float, positive_int, run_command

CASES_HZ = [(48000, 16000), (48000, 8000), (16000, 8000), (44100, 16000)]
STREAM_CHUNK_S = 0.02  # 20 ms callbacks, a typical audio block


def median_us(function, *, iterations: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    times_ns = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        function()
        times_ns.append(time.perf_counter_ns() - start)
    return float(np.median(times_ns)) / 1000.0


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resample", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=positive_int, default=200,
                        help="timed calls per measurement (median reported)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed calls before each measurement")
    parser.add_argument("--seconds", type=positive_float, default=1.0,
                        help=f"length of the input signal in seconds (at least {2 * STREAM_CHUNK_S:g}: two "
                             f"{STREAM_CHUNK_S * 1000:g} ms chunks)")
    args = parser.parse_args(argv)
    if args.seconds < 2 * STREAM_CHUNK_S:  # the one-chunk timing pushes the second chunk
        parser.error(f"--seconds must be at least {2 * STREAM_CHUNK_S:g}, got {args.seconds:g}")

    import scipy
    import scipy.signal

    try:
        import soxr
    except ImportError:  # optional peer
        soxr = None

    print(f"python {platform.python_version()}  numpy {np.__version__}  scipy {scipy.__version__}  "
          f"soxr {getattr(soxr, '__version__', 'absent')}  native from {native.__file__}")
    print(f"machine {platform.machine()}  {platform.processor() or platform.platform()}")
    print(f"input {args.seconds:g} s of float32 noise per call; median of {args.iterations} calls after "
          f"{args.warmup} warm-up calls; streaming in {STREAM_CHUNK_S * 1000:g} ms chunks")
    print()
    header = f"{'rates':>14} {'method':<34} {'median us':>10} {'x native':>9} {'max |diff| vs scipy f64':>24}"
    print(header)
    print("-" * len(header))

    rng = np.random.default_rng(0)
    for from_hz, to_hz in CASES_HZ:
        up, down = ratio_for(from_hz, to_hz)
        x = (0.3 * rng.standard_normal(int(args.seconds * from_hz))).astype(np.float32)
        reference = scipy.signal.resample_poly(x.astype(np.float64), up, down)
        chunk = int(STREAM_CHUNK_S * from_hz)
        chunks = [x[i:i + chunk] for i in range(0, len(x), chunk)]

        def run_stream():
            resampler = Resampler(up, down)
            return np.concatenate([resampler.process(c) for c in chunks] + [resampler.flush()])

        stream_resampler = Resampler(up, down)
        methods = [
            ("native resample_poly", lambda: resample_poly(x, up, down)),
            ("native Resampler, whole stream", run_stream),
            ("scipy resample_poly float32", lambda: scipy.signal.resample_poly(x, up, down)),
            ("scipy resample_poly float64", lambda: scipy.signal.resample_poly(x.astype(np.float64), up, down)),
        ]
        if soxr is not None:
            methods.append(("soxr.resample HQ (other filter)", lambda: soxr.resample(x, from_hz, to_hz, quality="HQ")))

        native_us = None
        for name, function in methods:
            us = median_us(function, iterations=args.iterations, warmup=args.warmup)
            native_us = native_us or us
            output = function()
            diff = float(np.max(np.abs(output[: len(reference)] - reference[: len(output)])))
            print(f"{from_hz:>6}->{to_hz:<6} {name:<34} {us:>10.1f} {us / native_us:>9.2f} {diff:>24.2e}")
        per_chunk_us = median_us(lambda: stream_resampler.process(chunks[1]),
                                 iterations=args.iterations * 10, warmup=args.warmup)
        print(f"{from_hz:>6}->{to_hz:<6} {'native Resampler, one 20 ms chunk':<34} {per_chunk_us:>10.2f} "
              f"{per_chunk_us / native_us:>9.3f} {'':>24}")
        print()


if __name__ == "__main__":
    run_command(main)
