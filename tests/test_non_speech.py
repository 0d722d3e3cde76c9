"""benchmarks.non_speech: the sounds it makes and its command line."""
import numpy as np
import pytest

from benchmarks import non_speech
from kws_toy import build_toy_model
from test_benchmark_commands import bad_models
from benchmarks.non_speech import PEAK_DBFS_RANGE, SOUNDS, make_sounds
from train.kws import acoustics


def test_sounds_are_seeded_one_second_clips_of_every_kind_at_their_levels():
    sounds = make_sounds(3, seed=5)
    assert sounds.audio.shape == (3 * len(SOUNDS), 16000) and sounds.audio.dtype == np.int16
    assert sounds.counts() == {kind: 3 for kind in SOUNDS} and set(sounds.classes) == {"_silence_"}
    for clip in sounds.audio:
        assert PEAK_DBFS_RANGE[0] - 0.1 <= acoustics.peak_dbfs(clip) <= PEAK_DBFS_RANGE[1] + 0.1
        assert clip[0] == 0 and clip[-1] == 0  # faded in and out: no click where a clip meets a gap
    np.testing.assert_array_equal(make_sounds(3, seed=5).audio, sounds.audio)
    assert not np.array_equal(make_sounds(3, seed=6).audio, sounds.audio)
    with pytest.raises(ValueError, match="clips_per_kind"):
        make_sounds(0, seed=1)


def test_each_sound_has_its_shape():
    rng = np.random.default_rng(0)
    frames = lambda clip: np.lib.stride_tricks.sliding_window_view(clip, 640)[::320]  # noqa: E731
    beeps, _ = SOUNDS["beeps"](rng)
    energy = (frames(beeps) ** 2).sum(axis=1)
    assert energy.min() < 1e-3 * energy.max()            # silent between the beeps
    tone, source = SOUNDS["tone"](rng)
    energy = (frames(tone) ** 2).sum(axis=1)
    assert energy.min() > 0.9 * energy.max()              # steady
    sweep, source = SOUNDS["sweep"](rng)
    first, last = (np.argmax(np.abs(np.fft.rfft(part))) for part in (sweep[:1600], sweep[-1600:]))
    assert abs(first - last) > 20 and "->" in source       # the frequency moves by kHz


def test_cli_refuses_bad_input(tmp_path, capsys):
    assert non_speech.main(["--model", str(tmp_path / "absent.tflite")]) == 2
    assert "no such model file" in capsys.readouterr().err
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(b"TFL3" + bytes(10))
    assert non_speech.main(["--model", str(truncated)]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        non_speech.main(["--clips-per-kind", "0"])
    assert exit_info.value.code == 2 and "--clips-per-kind" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        non_speech.main(["--seed", "-1"])
    assert exit_info.value.code == 2 and "--seed: expected an integer >= 0, got -1" in capsys.readouterr().err
    for path, message in bad_models(tmp_path / "models").values():
        assert non_speech.main(["--model", str(path)]) == 2
        assert message in capsys.readouterr().err


def test_a_model_is_run_over_every_kind_and_reported(tmp_path_factory, tmp_path, capsys):
    model = build_toy_model(tmp_path_factory.getbasetemp() / "toy_kws")  # shared with other modules
    report = tmp_path / "non_speech.md"
    assert non_speech.main(["--model", str(model), "--clips-per-kind", "2", "--markdown", str(report)]) == 0
    text = report.read_text()
    assert "--clips-per-kind 2" in text
    row = next(line for line in text.splitlines() if line.startswith(model.name))
    assert len(row.split(")")) == len(SOUNDS) + 2      # all, then one cell per kind, each "rate (count)"
    assert all(f"2 {kind}" in text for kind in SOUNDS)  # the stream holds two clips of each kind
