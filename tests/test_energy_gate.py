"""benchmarks.energy_gate: the clip levels it reports, its command line."""
import math

import numpy as np
import pytest

from benchmarks import energy_gate
from benchmarks.energy_gate import window_levels_at_peak
from train.kws.calibrate import join_list_values


def test_window_levels_by_hand():
    square = np.tile(np.array([0.5, -0.5], np.float32), 8000)     # RMS equals the peak
    half = square.copy()
    half[8000:] = 0.0                                             # half the energy: 3 dB down
    silent = np.zeros(16000, np.float32)                          # no peak: left out
    levels = window_levels_at_peak(np.stack([square, half, silent]), -40.0)
    assert levels == pytest.approx([-40.0, -40.0 - 10 * math.log10(2)], abs=1e-9)
    as_int16 = window_levels_at_peak(np.rint(np.stack([square, half]) * 32767).astype(np.int16), -20.0)
    assert as_int16 == pytest.approx([-20.0, -20.0 - 10 * math.log10(2)], abs=1e-6)


def test_gate_lists_parse_with_or_without_the_equals_sign():
    for argv in (["--gates", "-60,off"], ["--gates=-60,off"]):
        assert energy_gate.build_parser().parse_args(join_list_values(argv)).gates == (-60.0, -math.inf)


def test_cli_refuses_bad_input(tmp_path, capsys):
    assert energy_gate.main([str(tmp_path / "absent.tflite")]) == 2
    assert "no such model file" in capsys.readouterr().err
    for argv, message in ((["--gates", "-55,loud"], "--gates"), (["--gates", "3"], "--gates"),
                          (["--peak-dbfs", "3"], "--peak-dbfs")):
        with pytest.raises(SystemExit) as exit_info:
            energy_gate.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(b"TFL3" + bytes(10))
    assert energy_gate.main([str(truncated)]) == 2
    assert "error:" in capsys.readouterr().err
