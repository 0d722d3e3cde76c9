"""pi_runtime.record: takes trimmed, centred and judged on synthetic audio; the CLI on files and a stand-in microphone."""
import io
import sys
import types

import numpy as np
import pytest

from pi_runtime import record
from pi_runtime.record import CLIP_SAMPLES, TakeSettings, process_take, split_recording
from pi_runtime.wav import read_wav, write_wav

MIC_RATE_HZ = 48000
BACKGROUND_DBFS = -60.0


def _word(seconds, rate_hz, amplitude=0.3):
    """A voiced-sounding burst: harmonics of 180 Hz, 20 ms fades in and out."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    wave = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in (1, 2, 3, 5))
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return (amplitude * wave / np.abs(wave).max() * envelope).astype(np.float32)


def _room(seconds, rate_hz, rng, level_dbfs=BACKGROUND_DBFS):
    return (rng.standard_normal(int(seconds * rate_hz)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def _with_words(seconds, rate_hz, words, rng, **room):
    """Room noise of ``seconds`` with ``(start_s, length_s, amplitude)`` words added."""
    audio = _room(seconds, rate_hz, rng, **room)
    for start_s, length_s, amplitude in words:
        start = int(start_s * rate_hz)
        audio[start:start + int(length_s * rate_hz)] += _word(length_s, rate_hz, amplitude)
    return audio


def _speech_centre(clip):
    """Middle of the samples louder than the room, in samples."""
    loud = np.flatnonzero(np.abs(clip.astype(np.float32)) > 0.05 * np.abs(clip).max())
    return (loud[0] + loud[-1]) / 2


# -- one take ------------------------------------------------------------------------------------
def test_a_good_take_is_cut_to_one_second_centred_on_the_word():
    rng = np.random.default_rng(0)
    take = process_take(_with_words(1.5, MIC_RATE_HZ, [(0.55, 0.45, 0.3)], rng), MIC_RATE_HZ)
    assert take.accepted, take.reason
    assert take.clip.dtype == np.int16 and take.clip.shape == (CLIP_SAMPLES,)
    assert take.start_s == pytest.approx(0.55, abs=0.011) and take.end_s == pytest.approx(1.0, abs=0.011)
    # The word is centred (to the 10 ms frame it is found with), at its level.
    assert abs(_speech_centre(take.clip) - CLIP_SAMPLES / 2) <= 160
    assert np.abs(take.clip).max() == pytest.approx(0.3 * 32768, rel=0.03)


def test_a_take_with_two_bursts_keeps_both_in_its_clip():
    audio = _with_words(2.0, 16000, [(0.5, 0.3, 0.3), (1.15, 0.1, 0.2)], np.random.default_rng(0))
    take = process_take(audio, 16000)
    assert take.accepted, take.reason
    assert take.start_s == pytest.approx(0.5, abs=0.011) and take.end_s == pytest.approx(1.25, abs=0.011)


def test_a_word_near_the_start_keeps_the_clip_inside_the_recording():
    # Centred on the word (0.1..0.5 s), the second would begin 0.2 s before the recording: it starts at 0
    # instead, the word whole and off centre, the clip all recorded sound (no padding).
    audio = _with_words(1.5, 16000, [(0.1, 0.4, 0.3)], np.random.default_rng(0))
    take = process_take(audio, 16000)
    assert take.accepted, take.reason
    np.testing.assert_array_equal(take.clip, np.round(audio[:CLIP_SAMPLES] * 32768).astype(np.int16))


@pytest.mark.parametrize("name, audio, problem, words_in_reason", [
    ("silent", lambda rng: _room(1.5, MIC_RATE_HZ, rng), "silent", "no speech"),
    ("quiet", lambda rng: _with_words(1.5, MIC_RATE_HZ, [(0.4, 0.5, 0.002)], rng, level_dbfs=-90),
     "too quiet", "under -45 dBFS"),
    ("clipped", lambda rng: np.clip(_with_words(1.5, MIC_RATE_HZ, [(0.4, 0.5, 2.0)], rng), -1, 1),
     "clipped", "samples at full scale"),
    ("late start", lambda rng: _with_words(1.5, MIC_RATE_HZ, [(0.0, 0.5, 0.3)], rng), "cut off", "start"),
    ("early end", lambda rng: _with_words(1.5, MIC_RATE_HZ, [(1.1, 0.4, 0.3)], rng), "cut off", "end"),
    ("long", lambda rng: _with_words(1.8, MIC_RATE_HZ, [(0.2, 1.3, 0.3)], rng), "too long", "1.30 s"),
])
def test_bad_takes_are_rejected_with_the_reason(name, audio, problem, words_in_reason):
    take = process_take(audio(np.random.default_rng(1)), MIC_RATE_HZ)
    assert not take.accepted and take.clip is None
    assert take.problem == problem and words_in_reason in take.reason, take.reason


def test_a_few_full_scale_peaks_are_not_clipping_but_more_are():
    audio = _with_words(1.5, MIC_RATE_HZ, [(0.4, 0.5, 0.3)], np.random.default_rng(2))
    audio[int(0.6 * MIC_RATE_HZ) + np.arange(2)] = 1.0
    assert process_take(audio, MIC_RATE_HZ).accepted
    audio[int(0.6 * MIC_RATE_HZ) + 2] = -1.0
    assert process_take(audio, MIC_RATE_HZ).problem == "clipped"


def test_int16_and_float_takes_at_other_rates_agree():
    audio = _with_words(1.5, 16000, [(0.3, 0.5, 0.3)], np.random.default_rng(3))
    as_int16 = process_take(np.round(audio * 32768).astype(np.int16), 16000)
    as_float = process_take(audio, 16000)
    assert as_int16.accepted and as_float.accepted
    assert np.abs(as_int16.clip.astype(int) - as_float.clip).max() <= 1
    assert process_take(_with_words(1.5, 22050, [(0.3, 0.5, 0.3)], np.random.default_rng(3)), 22050).accepted


def test_settings_are_checked():
    with pytest.raises(ValueError, match="above_background_db"):
        TakeSettings(above_background_db=0)
    with pytest.raises(ValueError, match="min_pause_ms"):
        TakeSettings(min_pause_ms=-1)


# -- a long recording ----------------------------------------------------------------------------
WORDS = [(0.8, 0.45, 0.3), (2.3, 0.6, 0.2), (3.9, 0.35, 0.4), (5.3, 1.2, 0.3), (7.6, 0.5, 0.25), (9.2, 0.5, 0.3)]


def test_a_long_recording_is_split_at_the_pauses():
    rng = np.random.default_rng(4)
    audio = _with_words(10.0, MIC_RATE_HZ, WORDS, rng)
    takes = split_recording(audio, MIC_RATE_HZ)
    assert [round(take.start_s, 1) for take in takes] == [start for start, _, _ in WORDS]
    problems = [take.problem for take in takes]
    assert problems == [None, None, None, "too long", None, None], [take.reason for take in takes]
    for take, (start_s, length_s, amplitude) in zip(takes, WORDS):
        if take.accepted:
            assert take.clip.shape == (CLIP_SAMPLES,)
            assert abs(_speech_centre(take.clip) - CLIP_SAMPLES / 2) <= 160, (start_s, _speech_centre(take.clip))
            assert np.abs(take.clip).max() == pytest.approx(amplitude * 32768, rel=0.03)


def test_a_dip_inside_a_word_does_not_split_it_but_a_pause_does():
    rng = np.random.default_rng(5)
    dip = _with_words(3.0, 16000, [(0.8, 0.2, 0.3), (1.1, 0.25, 0.3)], rng)  # 100 ms closure: one word
    assert [(round(t.start_s, 1), round(t.end_s, 2)) for t in split_recording(dip, 16000)] == [(0.8, 1.35)]
    pause = _with_words(3.0, 16000, [(0.8, 0.2, 0.3), (1.35, 0.25, 0.3)], rng)  # 350 ms pause: two
    takes = split_recording(pause, 16000)
    assert len(takes) == 2 and all(take.problem == "crowded" for take in takes)  # each clip holds the other
    assert "1.35 s" in takes[0].reason
    assert len(split_recording(pause, 16000, settings=TakeSettings(min_pause_ms=500))) == 1


def test_words_at_the_ends_of_a_recording_are_cut_off_and_silence_is_said():
    rng = np.random.default_rng(6)
    takes = split_recording(_with_words(4.0, 16000, [(0.0, 0.4, 0.3), (1.5, 0.4, 0.3), (3.7, 0.3, 0.3)], rng), 16000)
    assert [take.problem for take in takes] == ["cut off", None, "cut off"]
    silent = split_recording(_room(3.0, 16000, rng), 16000)
    assert len(silent) == 1 and silent[0].problem == "silent"


# -- files and the command line --------------------------------------------------------------------
def _run(argv, stdin_text=""):
    out, err = io.StringIO(), io.StringIO()
    code = record.main(argv, stdin=io.StringIO(stdin_text), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _recording(tmp_path, rate_hz=MIC_RATE_HZ):
    audio = _with_words(10.0, rate_hz, WORDS, np.random.default_rng(7))
    path = tmp_path / "long.wav"
    write_wav(path, np.round(audio * 32768).astype(np.int16), rate_hz)
    return path


def test_from_recording_writes_16k_clips_and_numbers_on(tmp_path):
    long_wav = _recording(tmp_path)
    out_dir = tmp_path / "data"
    code, out, err = _run(["--label", "marvin", "--out", str(out_dir), "--speaker", "ab12cd34",
                           "--from-recording", str(long_wav)])
    assert code == 0, err
    names = sorted(path.name for path in (out_dir / "marvin").iterdir())
    assert names == [f"ab12cd34_nohash_{n}.wav" for n in range(5)]
    samples, rate_hz = read_wav(out_dir / "marvin" / names[0])
    assert rate_hz == 16000 and samples.shape == (CLIP_SAMPLES,)
    assert "too long" in out and "summary: 5 takes of 'marvin' saved" in out and "1 rejected: 1 too long" in out
    # A second run continues the numbering; --count keeps the first N accepted.
    code, out, _ = _run(["--label", "marvin", "--out", str(out_dir), "--speaker", "ab12cd34",
                         "--from-recording", str(long_wav), "--count", "2"])
    assert code == 0
    assert sorted(path.name for path in (out_dir / "marvin").iterdir())[-2:] == ["ab12cd34_nohash_5.wav",
                                                                                   "ab12cd34_nohash_6.wav"]
    assert len(list((out_dir / "marvin").iterdir())) == 7 and "--count 2 reached" in out


def test_numbering_skips_to_after_the_largest_existing_index(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    for name in ("s1_nohash_3.wav", "s1_nohash_10.wav", "s2_nohash_40.wav", "s1_nohash_x.wav"):
        (folder / name).write_bytes(b"")
    assert record.next_index(folder, "s1_nohash_") == 11 and record.next_index(folder, "s3_nohash_") == 0
    path = record.save_clip(folder, "s1_nohash_", np.zeros(CLIP_SAMPLES, np.int16))
    assert path.name == "s1_nohash_11.wav" and read_wav(path)[1] == 16000


def test_default_speaker_is_eight_hex_digits_and_stable():
    speaker = record.default_speaker()
    assert len(speaker) == 8 and int(speaker, 16) >= 0 and record.default_speaker() == speaker


def test_background_is_copied_from_a_recording(tmp_path):
    room = tmp_path / "room.wav"
    write_wav(room, np.round(_room(5.0, 44100, np.random.default_rng(8)) * 32768).astype(np.int16), 44100)
    code, out, err = _run(["--background", "3", "--from-recording", str(room), "--out", str(tmp_path / "d"),
                           "--speaker", "me"])
    assert code == 0, err
    samples, rate_hz = read_wav(tmp_path / "d" / "_background_noise_" / "me_room_0.wav")
    assert rate_hz == 16000 and samples.size == 48000 and "copying 3.0 s of 5.0 s" in out


@pytest.mark.parametrize("argv, message", [
    (["--out", "x"], "--label WORD is required"),
    (["--label", "yes"], "--out DIR is required"),
    (["--label", "yes", "--out", "x", "--count", "0"], "--count must be >= 1"),
    (["--label", "yes", "--out", "x", "--background", "5"], "separate runs"),
    (["--background", "-1", "--out", "x"], "positive number of seconds"),
    (["--label", "yes", "--out", "x", "--from-recording", "/no/such.wav"], "no such file"),
    (["--label", "../up", "--out", "x", "--speaker", "me"], "--label '../up'"),
    (["--label", "yes", "--out", "x", "--speaker", "a_nohash_b"], "--speaker 'a_nohash_b'"),
])
def test_bad_input_exits_with_2_and_says_why(argv, message, capsys):
    try:
        code, _, err = _run(argv)
    except SystemExit as exit_:  # argparse's own errors
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2 and message in err, err


def test_a_recording_with_no_word_kept_is_an_error(tmp_path):
    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0, np.int16), 16000)
    code, out, err = _run(["--label", "yes", "--out", str(tmp_path / "d"), "--from-recording", str(empty)])
    assert code == 2 and "empty.wav: holds no samples" in err and "stretch" not in out
    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, np.zeros(3 * 16000, np.int16), 16000)  # three seconds of digital silence
    code, out, err = _run(["--label", "yes", "--out", str(tmp_path / "d"), "--from-recording", str(quiet)])
    assert code == 1 and "summary: 0 takes of 'yes' saved" in out
    assert "no word of" in err and "quiet.wav was kept" in err


def test_a_recording_that_is_not_16_bit_mono_is_named(tmp_path):
    import wave

    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(2), writer.setsampwidth(2), writer.setframerate(16000)
        writer.writeframes(np.zeros(3200, np.int16).tobytes())
    code, _, err = _run(["--label", "yes", "--out", str(tmp_path / "d"), "--from-recording", str(path)])
    assert code == 2 and "stereo.wav" in err


# -- the microphone, through a stand-in for sounddevice ---------------------------------------------
def _fake_sounddevice(takes, rate_hz):
    """Each opened input stream delivers the next of ``takes`` (float32 arrays) when started."""
    module = types.ModuleType("sounddevice")
    module.opened = []
    pending = list(takes)

    class InputStream:
        def __init__(self, *, device, samplerate, channels, dtype, callback):
            assert channels == 1 and dtype == "float32" and samplerate == rate_hz
            self.callback, self.closed = callback, False
            module.opened.append(self)

        def start(self):
            audio = pending.pop(0) if pending else np.zeros(5 * rate_hz, np.float32)
            for block in np.array_split(audio, max(1, audio.size // 480)):
                self.callback(block.reshape(-1, 1), block.size, None, 0)

        def stop(self):
            pass

        def close(self):
            self.closed = True

    def query_devices(device=None, kind=None):
        if device not in (None, 0):
            raise ValueError(f"No input device matching {device!r}")
        return {"name": "fake mic", "default_samplerate": float(rate_hz)} if kind else "0 fake mic"

    module.InputStream, module.query_devices = InputStream, query_devices
    return module


def test_microphone_takes_are_asked_again_until_enough_are_kept(tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    good = [_with_words(1.5, MIC_RATE_HZ, [(0.4, 0.5, 0.3)], rng) for _ in range(2)]
    bad = [_room(1.5, MIC_RATE_HZ, rng), np.clip(_with_words(1.5, MIC_RATE_HZ, [(0.4, 0.5, 3.0)], rng), -1, 1)]
    fake = _fake_sounddevice([bad[0], good[0], bad[1], good[1]], MIC_RATE_HZ)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    code, out, err = _run(["--label", "yes", "--count", "2", "--out", str(tmp_path), "--speaker", "me",
                           "--device", "0", "--take-seconds", "1.5"], stdin_text="\n" * 10)
    assert code == 0, err
    assert sorted(path.name for path in (tmp_path / "yes").iterdir()) == ["me_nohash_0.wav", "me_nohash_1.wav"]
    assert out.count("rejected, no speech") == 1 and out.count("rejected, clipped") == 1
    assert "microphone 'fake mic' at 48000 Hz" in out and "1 silent" in out and "1 clipped" in out
    assert all(stream.closed for stream in fake.opened)
    # What was written is the take's clip: 16 kHz, the word centred.
    clip, _ = read_wav(tmp_path / "yes" / "me_nohash_0.wav")
    assert abs(_speech_centre(clip) - CLIP_SAMPLES / 2) <= 160


def test_microphone_stops_at_the_end_of_input_and_keeps_what_it_has(tmp_path, monkeypatch):
    rng = np.random.default_rng(10)
    monkeypatch.setitem(sys.modules, "sounddevice",
                        _fake_sounddevice([_with_words(1.5, MIC_RATE_HZ, [(0.4, 0.5, 0.3)], rng)], MIC_RATE_HZ))
    code, out, _ = _run(["--label", "yes", "--count", "5", "--out", str(tmp_path), "--speaker", "me",
                         "--take-seconds", "1.5"], stdin_text="\n")
    assert code == 0 and "(end of input)" in out and "summary: 1 takes of 'yes' saved" in out


def test_microphone_errors_are_explained(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice([], MIC_RATE_HZ))
    code, _, err = _run(["--label", "yes", "--out", str(tmp_path), "--device", "nonexistent", "--speaker", "me"])
    assert code == 2 and "no such input device 'nonexistent'" in err
    code, out, _ = _run(["--list-devices"])
    assert code == 0 and "fake mic" in out
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    code, _, err = _run(["--label", "yes", "--out", str(tmp_path), "--speaker", "me"])
    assert code == 2 and "pip install sounddevice" in err
