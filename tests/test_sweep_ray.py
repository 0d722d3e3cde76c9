"""The KWS sweep on Ray: a local Ray of two CPUs, interruption and resuming, failing points
(toy data, one epoch, int8 only). A real head node: tests/test_sweep_ray_cluster.py."""
import os
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")

from test_kws import write_toy_dataset  # noqa: E402
from train import sweep  # noqa: E402

@pytest.fixture(scope="module")
def toy_splits(tmp_path_factory):
    """(data folder, splits folder, Splits) of a toy data set."""
    from train.kws.data import load_split
    from train.kws.training import Splits

    folder = tmp_path_factory.mktemp("toy_sweep_ray")
    splits_dir = write_toy_dataset(folder, clips_per_word=(4, 2, 2))
    splits = Splits(*(load_split(name, data_dir=folder, split_path=splits_dir / f"kws_{name}_split.txt",
                                 progress=False) for name in ("train", "val", "test")))
    return folder, splits_dir, splits


def start_local_ray(attempts: int = 3) -> None:
    """A local Ray of two CPUs, workers at the test's priority. Ray gives its raylet 30 s to register,
    which a machine busy with other training can miss: then it is started again."""
    for attempt in range(attempts):
        try:
            ray.init(address="local", num_cpus=2, object_store_memory=80 * 1024 ** 2, include_dashboard=False,
                     log_to_driver=False, configure_logging=False, _system_config={"worker_niceness": 0})
            return
        except Exception as error:  # Ray raises a bare Exception for this
            ray.shutdown()
            if "timed out during startup" not in str(error) or attempt == attempts - 1:
                raise


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of two CPUs for this module, shut down after it."""
    start_local_ray()
    yield
    ray.shutdown()


def toy_points():
    """Four points: alpha {0.0625, 0.125} x final sparsity {0, 0.5}, one epoch."""
    return sweep.grid_points(["ds_cnn"], [0.0625, 0.125], ["mfcc"], [0.0, 0.5], epochs=1)


def _sweep(splits, csv_path, **options):
    return sweep.run_sweep(toy_points(), ["int8"], csv_path, splits, cluster=sweep.RayCluster(workers=2),
                           latency_runs=2, batch_size=4, verbose=False, **options)


def _point_keys(csv_path):
    return sorted((row["alpha"], row["final_sparsity"]) for row in sweep.read_rows(csv_path))


def test_four_points_on_a_local_ray_of_two_cpus(local_ray, toy_splits, tmp_path):
    csv_path = tmp_path / "sweep.csv"
    state = _sweep(toy_splits[2], csv_path, artifacts_dir=tmp_path / "models")
    assert (state.done, state.failed, state.total) == (4, 0, 4)
    rows = sweep.read_rows(csv_path)
    assert _point_keys(csv_path) == [("0.0625", "0.0"), ("0.0625", "0.5"), ("0.125", "0.0"), ("0.125", "0.5")]
    for row in rows:
        assert 0.0 <= float(row["accuracy"]) <= 1.0 and int(row["zlib_bytes"]) < int(row["tflite_bytes"])
    # the models came back from the workers as bytes: one .tflite and one sidecar per row, the file the row measured
    models = sorted((tmp_path / "models").glob("*.tflite"))
    assert len(models) == 4 and len(list((tmp_path / "models").glob("*.json"))) == 4
    sizes = {int(row["tflite_bytes"]) for row in rows}
    assert {path.stat().st_size for path in models} == sizes
    assert not sweep.read_failures(csv_path)


def test_an_interrupted_sweep_resumes_with_the_points_not_recorded(local_ray, toy_splits, tmp_path):
    csv_path = tmp_path / "sweep.csv"
    lines = []

    def interrupt_after_two(progress):
        lines.append(progress.line())
        if progress.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sweep(toy_splits[2], csv_path, progress=interrupt_after_two)
    assert len(sweep.read_rows(csv_path)) == 2
    assert "sweep: 0/4 done, 2 running, 0 failed" in lines[0] and "ETA ?" in lines[0]
    first_two = _point_keys(csv_path)
    state = _sweep(toy_splits[2], csv_path)
    assert state.total == 2 and state.done == 2  # only what was missing was trained
    keys = _point_keys(csv_path)
    assert len(keys) == 4 and len(set(keys)) == 4 and set(first_two) <= set(keys)


def test_a_failing_point_is_recorded_with_its_reason_and_the_rest_complete(local_ray, toy_splits, tmp_path):
    csv_path = tmp_path / "sweep.csv"

    def failing(point, *args, **kwargs):  # a closure: Ray ships it to the workers by value
        if point.alpha == 0.125 and point.final_sparsity == 0.0:
            raise RuntimeError("no memory left for this point")
        if point.alpha == 0.125 and point.final_sparsity == 0.5:
            os._exit(3)  # the worker dies, on the retry too
        return sweep.train_point(point, *args, **kwargs)

    state = _sweep(toy_splits[2], csv_path, point_function=failing)
    assert (state.done, state.failed) == (2, 2)
    assert _point_keys(csv_path) == [("0.0625", "0.0"), ("0.0625", "0.5")]
    failures = {row["final_sparsity"]: row["error"] for row in sweep.read_failures(csv_path)}
    assert failures["0.0"] == "RuntimeError: no memory left for this point"
    assert failures["0.5"].startswith("worker died twice (tried again once)")


def test_append_rows_completes_a_line_cut_short(tmp_path):
    csv_path = tmp_path / "s.csv"
    row = {column: "1" for column in sweep.COLUMNS}
    sweep.append_rows(csv_path, [row])
    with open(csv_path, "ab") as handle:
        handle.write(b"ds_cnn,0.25,mf")  # what a power cut in the middle of a write could leave
    assert len(sweep.read_rows(csv_path)) == 1
    sweep.append_rows(csv_path, [{**row, "alpha": "2"}])
    assert [r["alpha"] for r in sweep.read_rows(csv_path)] == ["1", "2"]
    assert csv_path.read_bytes().endswith(b"\r\n") and b"mf" not in csv_path.read_bytes()


def test_progress_line_counts_and_estimates():
    progress = sweep.SweepProgress(total=4, done=1, failed=1, running=2, started=time.perf_counter() - 60)
    line = progress.line()
    assert line.startswith("sweep: 1/4 done, 2 running, 1 failed, elapsed 1m00s") and line.endswith("ETA 1m00s")


def test_bad_ray_flags_are_errors(tmp_path, capsys):
    assert sweep.main(["--workers", "2", "--ray-address", "auto", "--output-dir", str(tmp_path)]) == 2
    assert "either --workers" in capsys.readouterr().err
    assert sweep.main(["--workers", "0", "--output-dir", str(tmp_path)]) == 2
    assert sweep.main(["--artifacts-shared", "--output-dir", str(tmp_path)]) == 2


def test_ablation_variants_run_as_ray_tasks_and_a_failing_one_is_said(local_ray, tmp_path):
    from train.kws import ablation

    def variant(name, version, epochs, seed, data_dir, output_dir, verbose=False):  # shipped by value
        if name == "vtlp":
            raise RuntimeError("this variant breaks")
        row = {column: 0.5 for column in ablation.COLUMNS}
        row.update(variant=name, version=version, epochs=epochs, seed=seed, description=ablation.describe(name),
                   **{"worst synthetic word": "go 50.0"})
        return row

    messages = []
    csv_path = tmp_path / "ablation.csv"
    failed = ablation.run_ablation(["baseline", "vtlp", "babble", "gain+babble"], csv_path, version="b", epochs=1,
                                   seed=0, data_dir=tmp_path, cluster=sweep.RayCluster(workers=2),
                                   variant_function=variant, say=messages.append)
    assert failed == ["vtlp"]
    assert sorted(row["variant"] for row in ablation.read_rows(csv_path)) == ["babble", "baseline", "gain+babble"]
    assert any("vtlp failed" in message and "this variant breaks" in message for message in messages)
