"""python -m pi_runtime.listen: detections at the right times from WAV files, stdin and a
(simulated) microphone; overruns reported; bad input refused with clear messages."""
import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from kws_toy import build_stream, build_toy_model, expected_window
from native.resample import resample_poly
from pi_runtime import listen
from pi_runtime.arguments import EXIT_BROKEN_PIPE
from pi_runtime.sidecar import read_sidecar, write_sidecar
from pi_runtime.wav import read_wav, write_wav

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS = [(1.0, "low"), (3.0, "high"), (5.0, "chirp"), (7.0, "high")]
STREAM_S = 9.0


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    return build_toy_model(tmp_path_factory.getbasetemp() / "toy_kws")


@pytest.fixture(scope="module")
def tone_stream():
    return build_stream(EVENTS, STREAM_S)  # int16 at 16 kHz


def _at_rate(audio_16k, rate_hz):
    if rate_hz == 16000:
        return audio_16k
    from math import gcd

    divisor = gcd(rate_hz, 16000)
    resampled = resample_poly(audio_16k, rate_hz // divisor, 16000 // divisor) * 32768
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def _run(argv, stdin_bytes=b""):
    out, err = io.StringIO(), io.StringIO()
    code = listen.main([str(a) for a in argv], stdin=io.BytesIO(stdin_bytes), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _detections(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def _assert_events_found(detections, events):
    assert [d["label"] for d in detections] == [label for _, label in events], detections
    for detection, (start_s, _) in zip(detections, events):
        low, high = expected_window(start_s)
        assert low <= detection["time_s"] <= high, (detection, start_s)
        assert detection["window_start_s"] == pytest.approx(detection["time_s"] - 1.0)
        assert 0.8 <= detection["score"] <= 1.0


# -- WAV files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rate_hz", [16000, 48000, 44100])
def test_wav_input_detects_each_word_once_at_its_time(toy_model, tone_stream, tmp_path, rate_hz):
    wav = tmp_path / f"tones_{rate_hz}.wav"
    write_wav(wav, _at_rate(tone_stream, rate_hz), rate_hz)
    code, out, err = _run(["--model", toy_model, "--input", wav, "--json"])
    assert code == 0, err
    _assert_events_found(_detections(out), EVENTS)
    assert "4 detections" in err and "0 samples dropped" in err
    assert f"{STREAM_S:.2f} s of audio" in err


def test_text_output_names_time_label_and_score(toy_model, tone_stream, tmp_path):
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    code, out, _ = _run(["--model", toy_model, "--input", wav])
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4
    time_s, unit, label, word, score = lines[0].split()
    assert (unit, label, word) == ("s", "low", "score") and 1.2 <= float(time_s) <= 2.35 and float(score) >= 0.8


def test_quiet_input_gives_no_detection_and_no_model_run(toy_model, tmp_path):
    quiet = build_stream([], 3.0, noise_dbfs=-70)
    wav = tmp_path / "quiet.wav"
    write_wav(wav, quiet, 16000)
    code, out, err = _run(["--model", toy_model, "--input", wav])
    assert code == 0 and out == ""
    assert "21 decisions every 100 ms: 0 ran the model, 21 below the energy gate" in err
    # Without the gate the model, which has no silence class, must name some word for the noise.
    code, _, err = _run(["--model", toy_model, "--input", wav, "--min-level-dbfs=-inf", "--threshold", "0"])
    assert code == 0 and "21 ran the model" in err


def test_threshold_and_refractory_options_take_effect(toy_model, tone_stream, tmp_path):
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    _, out, _ = _run(["--model", toy_model, "--input", wav, "--json", "--refractory-ms", "5000"])
    # Words at 1, 3, 5, 7 s: a 5 s refractory period leaves the first and the one at 7 s.
    assert [d["label"] for d in _detections(out)] == ["low", "high"]
    _, out, _ = _run(["--model", toy_model, "--input", wav, "--json", "--threshold", "1.0"])
    assert len(_detections(out)) < 4


def test_realtime_option_plays_the_file(toy_model, tone_stream, tmp_path):
    wav = tmp_path / "short.wav"
    write_wav(wav, tone_stream[:int(1.5 * 16000)], 16000)
    code, out, err = _run(["--model", toy_model, "--input", wav, "--realtime", "--json"])
    assert code == 0 and "1.50 s of audio" in err
    assert [d["label"] for d in _detections(out)] == ["low"]


def test_seconds_option_stops_early(toy_model, tone_stream, tmp_path):
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    code, out, err = _run(["--model", toy_model, "--input", wav, "--json", "--seconds", "2.5"])
    assert code == 0 and "2.50 s of audio" in err
    assert [d["label"] for d in _detections(out)] == ["low"]


def test_wav_shorter_than_one_window_is_padded_and_decided(toy_model, tmp_path):
    wav = tmp_path / "short.wav"
    write_wav(wav, build_stream([(0.1, "low")], 0.6), 16000)
    code, out, err = _run(["--model", toy_model, "--input", wav, "--json"])
    # Padded with zeros to one clip, as training pads short clips: one window, decided.
    assert code == 0 and "0.60 s of audio" in err and "1 decisions" in err
    assert [d["label"] for d in _detections(out)] == ["low"]


@pytest.mark.parametrize("rate_hz", [48000, 44100])
def test_a_one_second_wav_at_any_rate_is_decided_as_at_16_khz(toy_model, tmp_path, rate_hz):
    clip = build_stream([(0.3, "high")], 1.0)
    results = {}
    for rate in (16000, rate_hz):
        wav = tmp_path / f"one_second_{rate}.wav"
        write_wav(wav, _at_rate(clip, rate), rate)
        code, out, err = _run(["--model", toy_model, "--input", wav, "--json"])
        assert code == 0 and "1 decisions" in err, err
        results[rate] = [(d["label"], d["time_s"]) for d in _detections(out)]
    assert results[16000] == results[rate_hz] == [("high", 1.0)]
    # The same from stdin: the end of the input is flushed too.
    code, out, _ = _run(["--model", toy_model, "--input", "-", "--input-rate", rate_hz, "--json"],
                        _at_rate(clip, rate_hz).astype("<i2").tobytes())
    assert code == 0 and [(d["label"], d["time_s"]) for d in _detections(out)] == [("high", 1.0)]


def test_input_ending_between_hops_has_its_last_window_decided(toy_model, tmp_path):
    # A word whose end is heard only in the last 50 ms after the last hop.
    wav = tmp_path / "ends_between_hops.wav"
    write_wav(wav, build_stream([(1.1, "chirp")], 1.55), 16000)
    code, out, err = _run(["--model", toy_model, "--input", wav, "--json", "--hop-ms", "1000", "--smoothing-windows", "1"])
    assert code == 0 and "2 decisions" in err  # at 1.0 s and, flushed, at the last frame (1.54 s)
    assert [(d["label"], d["time_s"]) for d in _detections(out)] == [("chirp", 1.54)]


# -- detector settings: flags, then the sidecar, then the defaults ----------------------------------
@pytest.fixture()
def calibrated_toy_model(toy_model, tmp_path):
    model = tmp_path / "calibrated.tflite"
    model.write_bytes(toy_model.read_bytes())
    sidecar = read_sidecar(toy_model)
    sidecar["detector"] = {"threshold": 0.85, "smoothing_windows": 3, "hop_ms": 100.0, "refractory_ms": 5000.0,
                           "min_level_dbfs": -50.0,
                           "calibration": {"target_false_alarms_per_hour": 1.0, "stream": "toy stream, seed 0",
                                           "measured": {"keywords_detected_percent": 97.5}}}
    write_sidecar(model, sidecar)
    return model


def test_sidecar_detector_settings_are_the_defaults_and_flags_override_them(calibrated_toy_model, tone_stream,
                                                                          tmp_path):
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    _, out, err = _run(["--model", calibrated_toy_model, "--input", wav, "--json"])
    assert [d["label"] for d in _detections(out)] == ["low", "high"]  # the sidecar's 5 s refractory period
    assert "(-50 dBFS)" in err  # its gate
    _, out, _ = _run(["--model", calibrated_toy_model, "--input", wav, "--json", "--refractory-ms", "1000"])
    _assert_events_found(_detections(out), EVENTS)
    _, out, _ = _run(["--model", calibrated_toy_model, "--input", wav, "--json", "--refractory-ms", "1000",
                      "--threshold", "0.999"])
    assert len(_detections(out)) < 4


def test_verbose_shows_model_output_kind_detector_origins_and_calibration(calibrated_toy_model, tone_stream,
                                                                          tmp_path):
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    code, _, err = _run(["--model", calibrated_toy_model, "--input", wav, "--verbose", "--threshold", "0.9"])
    assert code == 0
    assert "interpreter" in err and "keywords: low, high, chirp" in err and "output: probabilities" in err
    assert "threshold 0.9 (--threshold)" in err and "smoothing_windows 3 windows (sidecar)" in err
    assert "refractory_ms 5000 ms (sidecar)" in err and "temperature 1 (default)" in err
    code, _, err = _run(["--model", calibrated_toy_model, "--input", wav, "--verbose", "--temperature", "0.5"])
    assert code == 0 and "temperature 0.5 (--temperature)" in err
    assert "calibration: target 1.0 false alarms/hour on toy stream, seed 0" in err
    code, _, err = _run(["--model", calibrated_toy_model.with_name("absent.tflite"), "--input", wav])
    assert code == 2


def test_keywords_option_listens_for_some_words_only(calibrated_toy_model, tone_stream, tmp_path, capsys):
    """--keywords high: the other words never fire, and while one of them leads "high" cannot either."""
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    base = ["--model", calibrated_toy_model, "--input", wav, "--json", "--refractory-ms", "1000"]
    _, out, _ = _run(base)
    everything = _detections(out)
    code, out, err = _run(base + ["--keywords", "high", "--verbose"])
    assert code == 0, err
    assert _detections(out) == [d for d in everything if d["label"] == "high"]
    _assert_events_found(_detections(out), [event for event in EVENTS if event[1] == "high"])
    assert "keywords: high" in err and "no calibration for high alone" in err
    assert "threshold 0.85 (sidecar)" in err  # the model's own calibration stands in
    # A calibration for "high" alone is taken when the sidecar has one.
    sidecar = read_sidecar(calibrated_toy_model)
    sidecar["detector"]["keyword_subsets"] = {"high": {"threshold": 0.999, "smoothing_windows": 1,
                                                       "calibration": {"keywords": ["high"]}}}
    write_sidecar(calibrated_toy_model, sidecar)
    code, out, err = _run(base + ["--keywords", "high", "--verbose"])
    assert code == 0 and "threshold 0.999 (sidecar)" in err and "no calibration" not in err
    assert "smoothing_windows 1 windows (sidecar)" in err
    code, _, err = _run(base + ["--keywords", "high,zebra"])
    assert code == 2 and "'zebra': a model can listen only for its own keywords (low, high, chirp)" in err
    for text, message in (("high,,low", "comma-separated keywords"), ("high,high", "named twice")):
        with pytest.raises(SystemExit) as exit_info:
            _run(base + ["--keywords", text])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_help_names_the_default_open_set_model_without_markup(capsys):
    with pytest.raises(SystemExit):
        listen.main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m pi_runtime.listen [--model MODEL]")
    assert "--list-devices" in text.splitlines()[1]
    assert "kws_live_c.tflite.zlib" in " ".join(text.split()) and "`" not in text
    assert Path(listen.DEFAULT_MODEL).is_file()  # the delivered open-set model, found from any folder


def test_help_shows_model_as_required_without_a_default(capsys, monkeypatch):
    monkeypatch.setattr(listen, "DEFAULT_MODEL", None)
    with pytest.raises(SystemExit):
        listen.main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m pi_runtime.listen --model MODEL")
    assert "required unless --list-devices" in text and "`" not in text


def test_default_model_is_open_set():
    from pi_runtime.labels import NON_KEYWORD_LABELS
    from pi_runtime.sidecar import read_sidecar

    sidecar = read_sidecar(listen.DEFAULT_MODEL)
    assert set(NON_KEYWORD_LABELS) <= set(sidecar["labels"]) and "detector" in sidecar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_status_line_on_a_terminal_shows_level_rate_and_cpu(toy_model, tone_stream, tmp_path, monkeypatch):
    monkeypatch.setattr(listen, "STATUS_INTERVAL_S", 0.0)
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    out, err = io.StringIO(), _Terminal()
    assert listen.main(["--model", str(toy_model), "--input", str(wav)], out=out, err=err) == 0
    status = [line for line in err.getvalue().split("\r") if line.startswith("level")]
    assert status and all(re.match(r"level +-?[\d.]+ dBFS \| +[\d.]+ decisions/s \| CPU +[\d.]+% \| "
                                   r"detections \d+ \| overruns 0", line) for line in status), status
    assert "\033[K" in err.getvalue()  # cleared before each detection and the summary
    assert len(out.getvalue().splitlines()) == 4


# -- stdin ------------------------------------------------------------------------------------------
def test_stdin_raw_pcm_gives_the_same_detections_as_the_wav(toy_model, tone_stream, tmp_path):
    wav = tmp_path / "tones.wav"
    write_wav(wav, tone_stream, 16000)
    _, from_wav, _ = _run(["--model", toy_model, "--input", wav, "--json"])
    # A real pipe into a real process, as with arecord.
    result = subprocess.run([sys.executable, "-m", "pi_runtime.listen", "--model", str(toy_model), "--input", "-",
                             "--json"], input=tone_stream.astype("<i2").tobytes(), capture_output=True,
                            cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert _detections(result.stdout.decode()) == _detections(from_wav)


def test_stdin_at_another_rate_is_resampled(toy_model, tone_stream):
    raw = _at_rate(tone_stream, 48000).astype("<i2").tobytes()
    code, out, err = _run(["--model", toy_model, "--input", "-", "--input-rate", "48000", "--json"], raw)
    assert code == 0, err
    _assert_events_found(_detections(out), EVENTS)


def test_stdin_odd_trailing_byte_is_reported(toy_model, tone_stream):
    raw = tone_stream[:16000].astype("<i2").tobytes() + b"\x01"
    code, _, err = _run(["--model", toy_model, "--input", "-"], raw)
    assert code == 0 and "1.00 s of audio" in err and "1 byte(s) of an incomplete sample" in err


def test_empty_stdin_is_a_clean_empty_run(toy_model):
    code, out, err = _run(["--model", toy_model, "--input", "-"], b"")
    assert code == 0 and out == "" and "0.00 s of audio" in err and "0 decisions" in err


def _sigint_as_in_a_terminal() -> None:
    """A job started in the background by a shell without job control (nohup cmd &) ignores SIGINT, and a
    child inherits that; the listener is stopped from a terminal, where SIGINT has its default action."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_cleanly_with_a_summary(toy_model, tone_stream):
    process = subprocess.Popen([sys.executable, "-m", "pi_runtime.listen", "--model", str(toy_model), "--input", "-",
                                "--verbose"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=REPO_ROOT, preexec_fn=_sigint_as_in_a_terminal)
    try:
        for line in process.stderr:  # wait until the model is loaded and the input open
            if line.startswith(b"labels:"):
                break
        process.stdin.write(tone_stream[:2 * 16000].astype("<i2").tobytes())
        process.stdin.flush()
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, rest.decode()
    assert b"(stopped by Ctrl-C)" in rest and b"Traceback" not in rest


# -- microphone (a stand-in for sounddevice: same calls, audio from an array) ------------------------
class FakeInputStream:
    """Delivers ``audio`` to the callback in 10 ms blocks: ``burst_blocks`` of them at once in start(),
    the rest from a thread, each as soon as the ring buffer has room (so only the burst can overrun,
    and the test does not depend on how busy the machine is)."""

    def __init__(self, audio, rate_hz, burst_blocks, callback, **kwargs):
        assert kwargs["channels"] == 1 and kwargs["dtype"] == "float32" and kwargs["samplerate"] == rate_hz
        self.audio, self.block = audio, rate_hz // 100
        self.burst_blocks = burst_blocks
        self.callback = callback
        self.position = 0
        self.running = False
        self.closed = False

    def _deliver(self, status=0):
        block = self.audio[self.position:self.position + self.block]
        self.position += self.block
        if block.size:
            self.callback(block.reshape(-1, 1), block.size, None, status)

    def _run(self):
        ring = self.callback.__self__.ring  # the MicrophoneSource's AudioRing
        while self.running and self.position < self.audio.size:
            if ring.capacity - ring.available >= self.block:
                self._deliver()
            else:
                time.sleep(0.0002)

    def start(self):
        for k in range(self.burst_blocks):
            self._deliver(status=1 if k == 0 else 0)  # PortAudio flags an input overflow once
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self):
        self.running = False
        self.thread.join()

    def close(self):
        self.closed = True


def _fake_sounddevice(audio, rate_hz, burst_blocks=0):
    module = types.ModuleType("sounddevice")
    module.streams = []

    def query_devices(device=None, kind=None):
        if device not in (None, 0, "fake"):
            raise ValueError(f"No input device matching {device!r}")
        return {"name": "fake mic", "default_samplerate": float(rate_hz)} if kind else "0 fake mic, 1 in, 0 out"

    def input_stream(**kwargs):
        stream = FakeInputStream(audio, rate_hz, burst_blocks, **kwargs)
        module.streams.append(stream)
        return stream

    module.query_devices = query_devices
    module.InputStream = input_stream
    return module


def test_microphone_audio_goes_through_the_ring_to_detections(toy_model, tone_stream, monkeypatch):
    audio = (_at_rate(tone_stream, 48000) / 32768).astype(np.float32)
    fake = _fake_sounddevice(audio, 48000)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    code, out, err = _run(["--model", toy_model, "--json", "--seconds", str(STREAM_S - 0.05)])
    assert code == 0, err
    _assert_events_found(_detections(out), EVENTS)
    assert "microphone 'fake mic' at 48000 Hz" in err and "0 samples dropped by the ring buffer" in err
    assert fake.streams[0].closed and not fake.streams[0].running


def test_microphone_overruns_are_counted_not_hidden(toy_model, tone_stream, monkeypatch):
    audio = (_at_rate(tone_stream, 48000) / 32768).astype(np.float32)
    # 1 s arrives at once into a 100 ms ring: 4800 samples fit, 43200 are dropped and counted.
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice(audio, 48000, burst_blocks=100))
    code, _, err = _run(["--model", toy_model, "--buffer-ms", "100", "--seconds", "3", "--device", "0"])
    assert code == 0, err
    assert "43200 samples dropped by the ring buffer, 1 input overflows reported by the audio device" in err
    # ... and said at once, not only in the summary.
    assert "warning: the ring buffer dropped 43200 samples (900 ms)" in err.split("summary:")[0]


def test_microphone_is_released_when_the_pipeline_cannot_be_built(toy_model, monkeypatch):
    fake = _fake_sounddevice(np.zeros(4800, np.float32), 800)  # a "device" at 800 Hz: refused
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    code, _, err = _run(["--model", toy_model])
    assert code == 2 and "between 1000 and 768000 Hz" in err
    assert fake.streams[0].closed and not fake.streams[0].running


def test_list_devices_and_unknown_device(toy_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice(np.zeros(10, np.float32), 48000))
    code, out, _ = _run(["--list-devices"])
    assert code == 0 and "fake mic" in out
    code, _, err = _run(["--model", toy_model, "--device", "nonexistent"])
    assert code == 2 and "no such input device 'nonexistent'" in err and "--list-devices" in err


def test_missing_sounddevice_is_explained(toy_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails with ImportError
    code, _, err = _run(["--model", toy_model])
    assert code == 2 and "pip install sounddevice" in err and "--input" in err


def test_missing_portaudio_is_explained(toy_model, monkeypatch, tmp_path):
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    code, _, err = _run(["--list-devices"])
    assert code == 2 and "PortAudio library not found" in err and "libportaudio2" in err


# -- bad input ------------------------------------------------------------------------------------
def _wav_bytes_with(channels=1, sample_width=2, rate_hz=16000, frames=1600):
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate_hz)
        writer.writeframes(b"\x00" * frames * channels * sample_width)
    return buffer.getvalue()


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"RIFF\x00\x00garbage that is no wav", "not a PCM WAV file"),
    (_wav_bytes_with(channels=2), "2 channels"),
    (_wav_bytes_with(sample_width=1), "8-bit"),
    (_wav_bytes_with()[:-100], "truncated"),
])
def test_bad_wav_input_is_refused(toy_model, tmp_path, content, message):
    wav = tmp_path / "bad.wav"
    if content is not None:
        wav.write_bytes(content)
    code, out, err = _run(["--model", toy_model, "--input", wav])
    assert code == 2 and out == "" and message in err and err.startswith("error:")


def test_a_folder_is_no_wav_and_no_model(toy_model, tmp_path):
    code, out, err = _run(["--model", toy_model, "--input", tmp_path])
    assert code == 2 and "is a folder, not a WAV file" in err
    code, out, err = _run(["--model", tmp_path, "--input", tmp_path])
    assert code == 2 and "is a folder, not a model file" in err


def test_bad_models_are_refused(toy_model, tmp_path):
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(toy_model.read_bytes()[:200])
    (tmp_path / "truncated.json").write_text(toy_model.with_suffix(".json").read_text())
    code, _, err = _run(["--model", truncated, "--input", "-"])
    assert code == 2 and "truncated.tflite" in err

    no_sidecar = tmp_path / "no_sidecar.tflite"
    no_sidecar.write_bytes(toy_model.read_bytes())
    code, _, err = _run(["--model", no_sidecar, "--input", "-"])
    assert code == 2 and "no sidecar" in err

    code, _, err = _run(["--model", tmp_path / "absent.tflite", "--input", "-"])
    assert code == 2 and "no such model file" in err


@pytest.mark.parametrize("argv, message", [
    (["--threshold", "1.5"], "threshold"),
    (["--hop-ms", "0"], "hop_ms"),
    (["--smoothing-windows", "0"], "smoothing_windows"),
    (["--smoothing-windows", str(10 ** 9)], "smoothing_windows must be an integer from 1 to 100"),
    (["--temperature", "0"], "temperature must be a number from 0.01 to 100"),
    (["--input-rate", "0"], "--input-rate"),
    (["--input-rate", "7"], "between 1000 and 768000 Hz"),
])
def test_bad_options_are_refused(toy_model, argv, message):
    code, _, err = _run(["--model", toy_model, "--input", "-"] + argv, b"\x00\x00" * 100)
    assert code == 2 and message in err


def test_model_is_required_without_a_default(capsys, monkeypatch):
    monkeypatch.setattr(listen, "DEFAULT_MODEL", None)
    with pytest.raises(SystemExit) as exit_info:
        listen.main(["--input", "-"])
    assert exit_info.value.code == 2 and "--model is required" in capsys.readouterr().err


# -- a delivered model on real test-split clips ------------------------------------------------------
def _delivered_models():
    folder = REPO_ROOT / "models" / "kws"
    return sorted(p for p in folder.glob("*.tflite*") if p.name.endswith((".tflite", ".tflite.zlib"))
                  and p.with_name(p.name.split(".tflite")[0] + ".json").is_file())


@pytest.mark.realdata
def test_delivered_model_finds_test_split_keywords_at_their_times(test_split_clips, tmp_path):
    models = _delivered_models()
    if not models:
        pytest.skip("no delivered keyword-spotting model in models/kws/ yet")
    # The first five test-split clips of every word, in split order, 2 s apart, silence between.
    per_label = {}
    for clip in test_split_clips:
        if len(per_label.setdefault(clip.parent.name, [])) < 5:
            per_label[clip.parent.name].append(clip)
    clips = [clip for group in zip(*per_label.values()) for clip in group]  # words interleaved
    events, audio = [], np.zeros(int((2 * len(clips) + 1) * 16000), np.int16)
    for k, clip in enumerate(clips):
        samples, rate_hz = read_wav(clip)
        assert rate_hz == 16000
        start_s = 1.0 + 2.0 * k
        audio[int(start_s * 16000):int(start_s * 16000) + samples.size] = samples
        events.append((start_s, clip.parent.name))
    wav = tmp_path / "keywords.wav"
    write_wav(wav, _at_rate(audio, 48000), 48000)  # as from a USB microphone
    for model in models:
        code, out, err = _run(["--model", model, "--input", wav, "--json"])
        assert code == 0, err
        detections = _detections(out)
        # Every detection lies where a word is: window end from 0.1 s into the clip to 0.8 s after it.
        spans = [next((k for k, (start_s, _) in enumerate(events) if start_s + 0.1 <= d["time_s"] <= start_s + 1.8),
                      None) for d in detections]
        assert None not in spans, (model.name, detections)
        # A keyword-subset model (e.g. go/stop) is judged on its own words only: without an
        # unknown class it must name one of its labels for any other word, so those are not errors.
        labels = set(read_sidecar(model)["labels"])
        own = {k for k, (_, word) in enumerate(events) if word in labels}
        on_own = [(k, d) for k, d in zip(spans, detections) if k in own]
        found = {k for k, d in on_own if d["label"] == events[k][1]}
        # The delivered models detect ~92 % of test-split clips in a stream (benchmarks/streaming.py).
        assert len(found) >= 0.8 * len(own), (model.name, len(found), detections)
        assert len(on_own) - len(found) <= 4, (model.name, detections)  # wrong words or repeats


def test_parse_device_reads_an_index_or_a_name():
    assert listen.parse_device(None) is None
    assert listen.parse_device("2") == 2 and listen.parse_device(" 0 ") == 0
    assert listen.parse_device(" USB Audio ") == "USB Audio"
    for bad in ("", "  ", "-1"):
        with pytest.raises(ValueError, match="--device"):
            listen.parse_device(bad)


# -- a course model's input: 32x32 resized spectrograms -------------------------------------------
def _spectrogram_32x32_model(folder):
    """A toy model on the course's 32x32 spectrograms: "tone" when the bins of a 1 kHz tone (rows
    of the resized spectrogram around 1000 / 8000 x 32 = 4) hold more than the rest, else "_silence_".
    Its weights are set, not trained: what it answers follows from the features alone."""
    from native.params import FrontendParams, ModelInput
    from pi_runtime.sidecar import KwsSpec
    from train.keras_env import keras, tf

    model_input = ModelInput(frontend=FrontendParams(feature_kind="spectrogram"), resize=(32, 32))
    inputs = keras.Input(shape=model_input.feature_shape)
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    weights = np.zeros((32, 32, 2), np.float32)
    weights[:, 3:6, 0] = 1.0  # the tone's bins
    weights[:, :, 1] = 0.02   # everything a little: silence wins when nothing is loud
    dense.set_weights([weights.reshape(32 * 32, 2), np.array([0.0, 1.0], np.float32)])
    path = folder / "spectrogram_32x32.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    spec = KwsSpec(input=model_input, labels=("tone", "_silence_"), output_kind="probabilities")
    write_sidecar(path, spec.to_sidecar(training={"what": "weights set by hand, for a test"}))
    return path


def test_listen_runs_a_model_on_32x32_spectrograms(tmp_path):
    model = _spectrogram_32x32_model(tmp_path)
    rate_hz = 16000
    t = np.arange(rate_hz) / rate_hz
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16)
    quiet = np.zeros(2 * rate_hz, np.int16)
    wav = tmp_path / "tone.wav"
    write_wav(wav, np.concatenate([quiet, tone, quiet]), rate_hz)
    code, out, err = _run(["--model", model, "--input", wav, "--json", "--min-level-dbfs=-inf", "--verbose"])
    assert code == 0, err
    assert "input (1, 32, 32)" in err and "output: probabilities" in err
    detections = _detections(out)
    # the tone (2 s to 3 s) fires while windows hold it (re-armed after the 1 s refractory), silence never
    assert detections and {d["label"] for d in detections} == {"tone"}, detections
    assert all(2.0 < d["time_s"] < 4.0 for d in detections), detections


def test_a_command_whose_reader_goes_away_stops_quietly():
    """``python -m pi_runtime.forecast ... | head -1``: no traceback, the shell's SIGPIPE status."""
    script = ("from pi_runtime.arguments import run_command\n"
              "def main():\n"
              "    for _ in range(10 ** 6):\n"
              "        print('x' * 99)\n"
              "    return 0\n"
              "run_command(main)\n")
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout.readline() == b"x" * 99 + b"\n"
    process.stdout.close()  # as head does after its line
    error = process.stderr.read().decode()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert error == "", error


def test_listen_lets_a_broken_pipe_through_instead_of_calling_it_an_error():
    """listen answers other OSErrors with 'error: ...' and status 2; a closed pipe is no error."""

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        listen.main(["--input", str(REPO_ROOT / "examples" / "keywords.wav")], out=ClosedPipe())


def test_builtin_kernels_reach_the_interpreter_and_hear_the_same_words():
    """--builtin-kernels (tflite_runtime 2.14's int8 kernels): scores move by quantisation steps,
    the example's words stay."""
    example = REPO_ROOT / "examples" / "keywords.wav"
    heard = {}
    for flags in ([], ["--builtin-kernels"]):
        code, out, err = _run(["--input", example, "--json", "--verbose", *flags])
        assert code == 0, err
        heard[bool(flags)] = _detections(out)
    assert [d["label"] for d in heard[False]] == [d["label"] for d in heard[True]] == ["yes", "no", "up", "down", "go"]
    assert [d["score"] for d in heard[False]] != [d["score"] for d in heard[True]]


# -- saving what fired ---------------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "keywords.wav"


def _saved_detections(wav, folder, extra=()):
    out = io.StringIO()
    err = io.StringIO()
    status = listen.main(["--input", str(wav), "--save-detections", str(folder), "--json", *extra], out=out, err=err)
    return status, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.mark.parametrize("factor", [1, 3])  # 16 kHz as recorded, and 48 kHz
def test_each_detection_is_saved_as_the_audio_of_its_window_and_the_half_second_before(tmp_path, factor):
    samples, rate_hz = read_wav(EXAMPLE)
    wav = tmp_path / "input.wav"
    write_wav(wav, np.repeat(samples, factor), factor * rate_hz)
    status, detections, err = _saved_detections(wav, tmp_path / "saved")
    files = sorted((tmp_path / "saved").iterdir())
    assert status == 0 and len(detections) == len(files) == 5 and "5 detection(s) saved in" in err
    audio = np.repeat(samples, factor)
    for detection, path in zip(detections, files):
        saved, saved_rate = read_wav(path)
        start = int(round((detection["window_start_s"] - listen.SAVED_BEFORE_WINDOW_S) * factor * rate_hz))
        end = int(round(detection["time_s"] * factor * rate_hz))
        assert saved_rate == factor * rate_hz and np.array_equal(saved, audio[max(0, start):end])
        assert path.name.endswith(f"_{detection['time_s']:.2f}s_{detection['label']}_{detection['score']:.2f}.wav")


def test_recent_audio_keeps_the_last_seconds_across_the_wrap():
    recent = listen.RecentAudio(1.0, 10)  # ten samples
    for chunk in (np.arange(4, dtype=np.int16), np.arange(4, 11, dtype=np.int16),
                  np.arange(11, 24, dtype=np.int16)):  # the last chunk longer than the buffer
        recent.write(chunk)
    assert recent.total == 24
    assert np.array_equal(recent.between(1.4, 2.4), np.arange(14, 24))
    assert np.array_equal(recent.between(0.0, 1.6), np.arange(14, 16))  # what is still held
    assert recent.between(2.4, 3.0).size == 0
    recent.write(np.array([[0.5], [-1.0], [2.0]], np.float32))  # float audio as a microphone gives it, clipped
    assert np.array_equal(recent.between(2.4, 2.7), [16384, -32768, 32767])


def test_a_detection_that_cannot_be_saved_is_said_and_listening_goes_on(tmp_path, monkeypatch):
    def full_card(path, samples, rate_hz):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(listen, "write_wav", full_card)
    status, detections, err = _saved_detections(EXAMPLE, tmp_path / "saved")
    assert status == 0 and len(detections) == 5
    assert err.count("warning: could not save") == 5 and "0 detection(s) saved" in err and "5 could not" in err


def test_a_folder_that_cannot_be_made_is_refused_before_listening(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    status, detections, err = _saved_detections(EXAMPLE, tmp_path / "taken" / "saved")
    assert status == 2 and not detections and err.startswith("error: ")
    with pytest.raises(SystemExit) as exit_info:  # a file named as the folder: refused with the arguments
        _saved_detections(EXAMPLE, tmp_path / "taken")
    assert exit_info.value.code == 2 and "exists and is not a folder" in capsys.readouterr().err


def test_saved_detections_are_numbered_on_and_never_overwritten(tmp_path):
    folder = tmp_path / "saved"
    for _ in range(2):
        assert _saved_detections(EXAMPLE, folder)[0] == 0
    names = sorted(path.name for path in folder.iterdir())
    assert len(names) == 10 and [name[:5] for name in names] == [f"{n:05d}" for n in range(1, 11)]
    assert names[0][5:] == names[5][5:]  # the same detection of the same file, kept twice


def test_a_write_that_fails_leaves_the_old_file_and_no_part_of_the_new_one(tmp_path):
    from pi_runtime.files import write_whole

    target = tmp_path / "clip.wav"
    target.write_bytes(b"before")

    def full_card(handle):
        handle.write(b"RIFF")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_whole(target, full_card)
    assert target.read_bytes() == b"before" and sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav"]
    write_wav(target, np.arange(16000, dtype=np.int16), 16000)
    assert np.array_equal(read_wav(target)[0], np.arange(16000)) and len(list(tmp_path.iterdir())) == 1
