"""Rebuild examples/keywords.wav from the Mini Speech Commands test split.

Five one-second test-split clips (zero-padded to one second, as in training)
placed two seconds apart in ten seconds of silence, 16 kHz 16-bit mono::

    TINYML_DATA_DIR=/path/holding/mini_speech_commands python examples/make_example.py

The clips come from the Speech Commands dataset by Pete Warden / Google,
licensed CC BY 4.0; see examples/README.md for the attribution.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pi_runtime.wav import read_wav, write_wav  # noqa: E402

SAMPLE_RATE_HZ = 16000
DURATION_S = 10.0
# (clip inside mini_speech_commands/, start time in the example in seconds); all from the course's test split.
CLIPS = [
    ("yes/76424fa5_nohash_1.wav", 0.5),
    ("no/e0a7c5a0_nohash_0.wav", 2.5),
    ("up/023a61ad_nohash_1.wav", 4.5),
    ("down/8a5acefd_nohash_0.wav", 6.5),
    ("go/0ea0e2f4_nohash_1.wav", 8.5),
]


def build(data_dir: Path) -> np.ndarray:
    """int16[DURATION_S * 16000]: the clips at their start times, silence elsewhere."""
    audio = np.zeros(int(DURATION_S * SAMPLE_RATE_HZ), dtype=np.int16)
    for name, start_s in CLIPS:
        path = data_dir / "mini_speech_commands" / name
        clip, rate_hz = read_wav(path)
        if rate_hz != SAMPLE_RATE_HZ or clip.size > SAMPLE_RATE_HZ:
            raise ValueError(f"{path}: expected at most one second at {SAMPLE_RATE_HZ} Hz")
        start = int(start_s * SAMPLE_RATE_HZ)
        audio[start:start + clip.size] = clip
    return audio


def main() -> int:
    parser = argparse.ArgumentParser(description="Rebuild the example recording from Mini Speech Commands clips.")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("TINYML_DATA_DIR") or Path.home() / ".cache" / "tinyml-pi"),
                        help="folder holding mini_speech_commands/ (default: $TINYML_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "examples" / "keywords.wav",
                        help="WAV file to write (default examples/keywords.wav)")
    args = parser.parse_args()
    try:
        audio = build(args.data_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_wav(args.out, audio, SAMPLE_RATE_HZ)
    print(f"wrote {args.out}: {DURATION_S:.0f} s at {SAMPLE_RATE_HZ} Hz")
    for name, start_s in CLIPS:
        print(f"  {start_s:4.1f}-{start_s + 1:4.1f} s  {name.split('/')[0]:<6s} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
