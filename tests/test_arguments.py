"""pi_runtime.arguments: argparse refuses a bad number naming its option."""
import argparse

import pytest

from pi_runtime.arguments import (fraction, non_negative_float, non_negative_int, output_folder, positive_float,
                                  positive_int)


def _parser(kind):
    parser = argparse.ArgumentParser(prog="cmd")
    parser.add_argument("--value", type=kind)
    return parser


@pytest.mark.parametrize("kind, good, bad", [
    (non_negative_int, {"0": 0, "7": 7}, ["-1", "1.5", "x", ""]),
    (positive_int, {"1": 1, "12": 12}, ["0", "-3", "2.0"]),
    (positive_float, {"0.5": 0.5, "3": 3.0}, ["0", "-1", "nan", "inf", "x"]),
    (non_negative_float, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "-inf"]),
    (fraction, {"0": 0.0, "0.75": 0.75}, ["1", "1.5", "-0.1", "nan", "half"]),
])
def test_good_values_pass_and_bad_ones_name_the_option(kind, good, bad, capsys):
    for text, value in good.items():
        assert _parser(kind).parse_args([f"--value={text}"]).value == value
    for text in bad:
        with pytest.raises(SystemExit) as exit_info:
            _parser(kind).parse_args([f"--value={text}"])
        assert exit_info.value.code == 2
        assert "argument --value: expected" in capsys.readouterr().err


def test_an_output_folder_may_be_absent_or_a_folder_but_not_a_file(tmp_path, capsys):
    assert _parser(output_folder).parse_args([f"--value={tmp_path}"]).value == tmp_path
    assert _parser(output_folder).parse_args([f"--value={tmp_path / 'new'}"]).value == tmp_path / "new"
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SystemExit):
        _parser(output_folder).parse_args([f"--value={tmp_path / 'a_file'}"])
    assert "a_file exists and is not a folder" in capsys.readouterr().err
