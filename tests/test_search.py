"""The architecture search: its space, the pruning of the size check, and a toy search of three trials on
a local Ray where an oversize candidate is rejected before any training."""
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")
optuna = pytest.importorskip("optuna", reason="Optuna is not installed (pip install -e '.[cluster]')")

from test_sweep_ray import start_local_ray, toy_splits  # noqa: E402,F401  (toy_splits: the fixture)
from train import search  # noqa: E402
from train.sweep import RayCluster  # noqa: E402

TINY = search.Candidate((16, 16, 16), 3, "2x2", "640/320", "mfcc", 40, 10, 0.0)
HUGE = search.Candidate((80,) * 6, 5, "1x2", "640/320", "mfcc", 40, 10, 0.0)
TOY_LIMITS = search.Limits(max_bytes=15000)


def test_a_candidate_survives_the_round_trip_through_tunes_config():
    for candidate in (TINY, HUGE, search.Candidate((24, 48, 32, 64), 5, "2x1", "480/160", "log_mel", 10, 0, 0.5)):
        assert search.Candidate.from_config(candidate.to_config()) == candidate
    assert search.Candidate.from_config({**TINY.to_config(), "distil": True}).distil
    # MFCCs beyond the mel bins are clipped to them
    assert search.Candidate.from_config({**TINY.to_config(), "num_mel_bins": 10, "num_mfccs": 13}).num_mfccs == 10


def test_the_delivered_a_is_the_first_candidate_and_distils():
    a = search.delivered_candidate("a")
    assert a.channels == (80,) * 5 and a.final_sparsity == 0.7 and a.distil
    assert search.distillable(a.frontend()) and "distil" in a.to_config()
    assert a.feature_kind == "pcen" and a.num_mel_bins == 10
    assert not search.distillable(search.Candidate((16,) * 3, 3, "2x2", "640/320", "log_mel", 10, 0, 0).frontend())
    assert not search.distillable(search.Candidate((16,) * 3, 3, "2x2", "640/320", "mfcc", 40, 10, 0).frontend())


def test_the_space_offers_distillation_only_with_the_teachers_features():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = {True: 0, False: 0}
    for _ in range(60):
        trial = study.ask()
        search.define_space(trial)
        params = trial.params
        assert len([name for name in params if name.startswith("channels_")]) == params["blocks"] + 1
        teacher_features = search.distillable(search.Candidate.from_config(params).frontend())
        assert ("distil" in params) == teacher_features
        seen[teacher_features] += 1
        study.tell(trial, 0.5)
    assert seen[False] > 0


def test_prune_by_magnitude_zeroes_the_smallest_weights_of_every_kernel():
    from train.toolbox.pruning import weight_sparsity

    model = TINY.build((49, 10), 3)
    search.prune_by_magnitude(model, 0.6)
    assert weight_sparsity(model) == pytest.approx(0.6, abs=0.01)
    conv = model.get_layer("pw1").get_weights()[0]
    assert np.count_nonzero(conv) == pytest.approx(0.4 * conv.size, abs=1)


@pytest.fixture(scope="module")
def toy_search(toy_splits):
    """Three trials of one epoch on a local Ray of two CPUs: TINY, HUGE (oversize), one sampled."""
    start_local_ray()
    try:
        yield search.run_search(toy_splits[2], TOY_LIMITS, trials=3, epochs=1, cluster=RayCluster(workers=2),
                                batch_size=4, first=[TINY, HUGE], retrain_top=1, retrain_seeds=(0, 1),
                                retrain_epochs=1, verbose=False)
    finally:
        ray.shutdown()


def test_an_oversize_candidate_is_rejected_before_training(toy_search):
    assert len(toy_search.trials) == 3
    huge = toy_search.trials[1]
    assert huge["channels"] == "80-80-80-80-80-80"
    assert huge["status"] == "rejected" and huge["reason"].startswith("size ")
    assert huge["epochs_trained"] == 0 and huge["untrained_bytes"] >= TOY_LIMITS.max_bytes and huge["bytes"] == ""


def test_a_candidate_that_fits_is_trained_and_its_file_measured(toy_search):
    tiny = toy_search.trials[0]
    assert tiny["channels"] == "16-16-16" and tiny["status"] == "completed" and tiny["epochs_trained"] == 1
    assert 0 <= tiny["val_accuracy"] <= 1 and 0 <= tiny["file_val_accuracy"] <= 1
    # the untrained file, with the growth the size check allows for, bounded the trained one's size
    assert tiny["bytes"] < TOY_LIMITS.max_bytes
    assert tiny["untrained_bytes"] <= tiny["bytes"] <= tiny["untrained_bytes"] * search.UNTRAINED_SIZE_GROWTH


def test_the_best_fitting_trial_is_trained_again_with_each_seed(toy_search):
    fitting = [row for row in toy_search.trials if row["status"] == "completed"]
    best = max(fitting, key=lambda row: row["val_accuracy"])
    [entry] = toy_search.retrained
    assert entry["trial"] == best["trial"] and [run["seed"] for run in entry["runs"]] == [0, 1]
    assert entry["mean_val_accuracy"] == pytest.approx(np.mean([run["val_accuracy"] for run in entry["runs"]]))
    assert all(run["model"][:1] == b"x" for run in entry["runs"])  # zlib streams, the delivered form


def test_the_reports_are_written(toy_search, tmp_path):
    search.write_trials_csv(toy_search.trials, tmp_path / "trials.csv")
    assert (tmp_path / "trials.csv").read_text().count("\n") == 4
    png = search.plot_trials(toy_search.trials, TOY_LIMITS, tmp_path / "plot.png", delivered=(12000, 0.5))
    assert png.stat().st_size > 1000
    text = search.report_markdown(toy_search, version="a", limits=TOY_LIMITS, command="test", epochs=1,
                                  retrain_epochs=1, delivered_val=0.99, decision="kws_a stays.", delivery=None)
    rejected = sum(row["status"] == "rejected" for row in toy_search.trials)
    assert f"{rejected} rejected before training" in text and "kws_a stays." in text


def test_bad_arguments_are_errors(tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    for arguments, message in [(["--trials", "0"], "argument --trials: expected an integer >= 1, got 0"),
                               (["--retrain-top", "-1"], "argument --retrain-top: expected an integer >= 0, got -1"),
                               (["--output-dir", str(tmp_path / "a_file")], "a_file exists and is not a folder"),
                               (["--deliver-dir", str(tmp_path / "a_file")], "a_file exists and is not a folder")]:
        with pytest.raises(SystemExit) as stopped:  # the flags that follow stop main before any work if not
            search.main(["--version", "a"] + arguments + ["--workers", "2", "--ray-address", "auto"])
        assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert search.main(["--version", "a", "--workers", "2", "--ray-address", "auto"]) == 2


def test_missing_data_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from train.kws import data as kws_data

    def offline(url, destination):
        raise OSError("offline")

    monkeypatch.setattr(kws_data, "_download", offline)
    assert search.main(["--version", "a", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"),
                        "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("error: could not download Mini Speech Commands")


def test_candidates_learn_with_the_versions_recipe_unless_told_the_courses(monkeypatch):
    import train.kws.training as training
    from train.kws.versions import VERSIONS

    seen = []

    def fake_fit(config, splits, train_features, val_features, **_):
        seen.append(config)
        return TINY.build((49, 10), 8), 0.5, 0

    monkeypatch.setattr(training, "fit", fake_fit)
    features = np.zeros((2, 49, 10), np.float32)
    for recipe in (VERSIONS["c"].config, None):
        search.train_candidate(TINY, None, features, features, epochs=1, recipe=recipe)
    versions, course = seen
    assert versions.augment == VERSIONS["c"].config.augment and versions.augment.babble_probability > 0
    assert versions.label_smoothing == VERSIONS["c"].config.label_smoothing > 0
    assert course.augment == training.RunConfig().augment and course.augment.babble_probability == 0
    assert course.label_smoothing == 0
    # the rest is the candidate's, whatever the recipe
    assert versions.frontend == course.frontend == TINY.frontend() and versions.epochs == 1
    assert search.build_parser().parse_args(["--version", "a"]).recipe == "version"
