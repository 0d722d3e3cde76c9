"""The KWS sweep: toy grid end to end, resuming, Pareto fronts and the strategy effects."""
import csv
import shutil

import pytest

from test_kws import write_toy_dataset
from train import sweep


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_sweep")
    return folder, write_toy_dataset(folder, clips_per_word=(4, 2, 2))


def _run(toy_data, output_dir, sparsities="0,0.5", features="mfcc"):
    folder, splits_dir = toy_data
    return sweep.main(["--models", "ds_cnn", "--alphas", "0.0625", "--features", features,
                       "--sparsities", sparsities, "--quantizations", "none,int8", "--epochs", "1", "--batch-size", "4",
                       "--latency-runs", "2", "--data-dir", str(folder), "--splits-dir", str(splits_dir),
                       "--output-dir", str(output_dir), "--quiet"])


@pytest.fixture(scope="module")
def swept(toy_data, tmp_path_factory):
    """Output folder of one toy sweep: ds_cnn x sparsity {0, 0.5} x quantisation {none, int8}."""
    output_dir = tmp_path_factory.mktemp("swept")
    assert _run(toy_data, output_dir) == 0
    return output_dir


def test_toy_sweep_writes_one_measured_row_per_exported_model(swept):
    rows = sweep.read_rows(swept / "sweep.csv")
    assert {(row["final_sparsity"], row["quantization"]) for row in rows} == {
        ("0.0", "none"), ("0.0", "int8"), ("0.5", "none"), ("0.5", "int8")}
    assert len(rows) == 4
    for row in rows:
        assert 0.0 <= float(row["accuracy"]) <= 1.0
        assert int(row["zlib_bytes"]) < int(row["tflite_bytes"])
        assert float(row["inference_ms_mean"]) > 0 and float(row["train_seconds"]) > 0
    by_key = {(row["final_sparsity"], row["quantization"]): row for row in rows}
    assert float(by_key[("0.5", "int8")]["weight_sparsity"]) > 0.25 > float(by_key[("0.0", "int8")]["weight_sparsity"])
    # the pruned model's zeros compress away
    assert int(by_key[("0.5", "none")]["zlib_bytes"]) < int(by_key[("0.0", "none")]["zlib_bytes"])
    assert (swept / "sweep_pareto.png").stat().st_size > 1000
    answers = (swept / "sweep.md").read_text()
    assert "Loses the least accuracy" in answers and "full int8 quantisation" in answers


def test_an_extended_sweep_trains_only_the_new_point(toy_data, swept, tmp_path):
    shutil.copy(swept / "sweep.csv", tmp_path / "sweep.csv")
    before = sweep.read_rows(tmp_path / "sweep.csv")
    assert _run(toy_data, tmp_path, sparsities="0,0.5,0.75") == 0
    after = sweep.read_rows(tmp_path / "sweep.csv")
    assert after[:4] == before and len(after) == 6
    assert {row["final_sparsity"] for row in after[4:]} == {"0.75"}


def test_report_only_redraws_from_the_csv(swept, tmp_path):
    shutil.copy(swept / "sweep.csv", tmp_path / "sweep.csv")
    assert sweep.main(["--report-only", "--output-dir", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "sweep.md").is_file() and (tmp_path / "sweep_pareto.png").is_file()


def test_bad_grid_values_are_errors(tmp_path, capsys):
    assert sweep.main(["--models", "rnn", "--output-dir", str(tmp_path), "--report-only"]) == 2
    assert "unknown model" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
    (["--latency-runs", "0"], "argument --latency-runs: expected an integer >= 1, got 0"),
    (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["--alphas=abc"], "argument --alphas: expected a finite number > 0, got 'abc'"),
    (["--alphas", "0.25,0"], "argument --alphas: expected a finite number > 0, got '0'"),
    (["--sparsities", "0,half"], "argument --sparsities: expected a number in [0, 1), got 'half'"),
    (["--sparsities", "1.0"], "argument --sparsities: expected a number in [0, 1), got '1.0'"),
    (["--models", ","], "argument --models: expected a comma-separated list, got ','"),
])
def test_bad_numbers_and_lists_are_refused_before_any_work(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        sweep.main(arguments + ["--output-dir", str(tmp_path), "--report-only"])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_lists_are_read_by_the_parser():
    args = sweep.build_parser().parse_args(["--alphas", "0.25, 0.5", "--sparsities", "0,0.5", "--models", "ds_cnn"])
    assert args.alphas == (0.25, 0.5) and args.sparsities == (0.0, 0.5) and args.models == ("ds_cnn",)
    assert sweep.build_parser().parse_args([]).epochs is None


@pytest.mark.parametrize("option", ["--output-dir", "--artifacts"])
def test_an_output_folder_that_is_a_file_is_refused_before_any_work(option, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SystemExit) as stopped:  # the output folder first: the last one given counts
        sweep.main(["--output-dir", str(tmp_path), option, str(tmp_path / "a_file"), "--report-only"])
    assert stopped.value.code == 2
    assert f"argument {option}: {tmp_path / 'a_file'} exists and is not a folder" in capsys.readouterr().err


def test_the_help_gives_the_quick_sweeps_time_as_the_readme_does():
    assert "about 25 minutes" in sweep.build_parser().format_help()


def test_feature_configurations_are_chosen_by_name(toy_data, tmp_path, capsys):
    assert sweep.main(["--features", "pcen", "--output-dir", str(tmp_path), "--report-only"]) == 2
    assert "mfcc, log_mel, log_mel_10" in capsys.readouterr().err
    assert _run(toy_data, tmp_path, sparsities="0", features="log_mel_10") == 0
    rows = sweep.read_rows(tmp_path / "sweep.csv")
    assert [row["feature_kind"] for row in rows] == ["log_mel_10", "log_mel_10"]
    # the MFCCs' 49 x 10 input, where "log_mel" keeps the 40 bins of the Lab
    assert sweep.SWEEP_FEATURES["log_mel_10"].num_features == 10 != sweep.SWEEP_FEATURES["log_mel"].num_features


def test_read_rows_rejects_a_csv_that_is_not_a_sweep(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a sweep CSV"):
        sweep.read_rows(path)
    assert sweep.read_rows(tmp_path / "absent.csv") == []


def test_pareto_front_keeps_only_undominated_points():
    rows = [{"accuracy": 0.90, "cost": 10}, {"accuracy": 0.92, "cost": 20}, {"accuracy": 0.91, "cost": 25},
            {"accuracy": 0.95, "cost": 40}, {"accuracy": 0.95, "cost": 50}, {"accuracy": 0.80, "cost": 5}]
    assert sweep.pareto_front(rows, "cost") == [5, 0, 1, 3]


def _row(**values):
    base = dict(model="ds_cnn", alpha=0.25, feature_kind="mfcc", final_sparsity=0.0, quantization="int8",
                epochs=5, seed=0, accuracy=0.9, val_accuracy=0.9, tflite_bytes=1000, zlib_bytes=800,
                weight_sparsity=0.0, parameters=100, inference_ms_mean=1.0, inference_ms_median=1.0,
                total_ms_mean=2.0, total_ms_median=2.0, train_seconds=1.0)
    base.update(values)
    return base


def test_strategy_effects_compare_rows_that_differ_in_one_factor_only():
    rows = [_row(), _row(final_sparsity=0.5, accuracy=0.88, zlib_bytes=400),
            _row(quantization="none", accuracy=0.91, tflite_bytes=4000, zlib_bytes=3600, inference_ms_median=2.0),
            _row(alpha=0.125, accuracy=0.85, tflite_bytes=500, zlib_bytes=420, inference_ms_median=0.5),
            _row(quantization="weights", accuracy=0.905, tflite_bytes=1200, zlib_bytes=1000, inference_ms_median=2.5)]
    effects = {e["strategy"]: e for e in sweep.strategy_effects(rows)}
    quant = effects["full int8 quantisation (vs float)"]
    assert quant["pairs"] == 1 and quant["accuracy_change_pp"] == pytest.approx(-1.0)
    assert quant["size_ratio"] == pytest.approx(800 / 3600) and quant["latency_ratio"] == pytest.approx(0.5)
    pruning = effects["magnitude pruning to 50% (vs dense)"]
    assert pruning["size_ratio"] == pytest.approx(0.5) and pruning["accuracy_change_pp"] == pytest.approx(-2.0)
    width = effects["width alpha 0.125 (vs 0.25)"]
    assert width["latency_ratio"] == pytest.approx(0.5)
    text = sweep.answers_markdown(sweep.numeric_rows(
        [{k: str(v) for k, v in row.items()} for row in rows]), csv_name="x.csv", png_name="x.png", command="test")
    weights = effects["weights-only int8 quantisation (vs float)"]
    assert weights["accuracy_change_pp"] == pytest.approx(-0.5) and weights["latency_ratio"] == pytest.approx(1.25)
    assert "Loses the least accuracy:** weights-only" in text
    assert "Saves the most memory:** full int8" in text
    assert "Saves the most latency:** full int8" in text or "Saves the most latency:** width" in text
    assert ("faster only with: full int8 quantisation (vs float), width alpha 0.125 (vs 0.25)." in text)
    assert "then quantise to full int8 (full int8 quantisation (vs float): zlib x0.22" in text


def test_append_row_writes_the_header_once(tmp_path):
    path = tmp_path / "s.csv"
    sweep.append_row(path, _row())
    sweep.append_row(path, _row(alpha=0.5))
    with open(path, newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(sweep.COLUMNS) and len(lines) == 3
