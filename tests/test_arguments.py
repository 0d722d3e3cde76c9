"""pi_runtime.arguments: argparse refuses a bad number naming its option."""
import argparse

import pytest

from pi_runtime.arguments import non_negative_float, non_negative_int, positive_float, positive_int


def _parser(kind):
    parser = argparse.ArgumentParser(prog="cmd")
    parser.add_argument("--value", type=kind)
    return parser


@pytest.mark.parametrize("kind, good, bad", [
    (non_negative_int, {"0": 0, "7": 7}, ["-1", "1.5", "x", ""]),
    (positive_int, {"1": 1, "12": 12}, ["0", "-3", "2.0"]),
    (positive_float, {"0.5": 0.5, "3": 3.0}, ["0", "-1", "nan", "inf", "x"]),
    (non_negative_float, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "-inf"]),
])
def test_good_values_pass_and_bad_ones_name_the_option(kind, good, bad, capsys):
    for text, value in good.items():
        assert _parser(kind).parse_args([f"--value={text}"]).value == value
    for text in bad:
        with pytest.raises(SystemExit) as exit_info:
            _parser(kind).parse_args([f"--value={text}"])
        assert exit_info.value.code == 2
        assert "argument --value: expected" in capsys.readouterr().err
