"""Property tests (Hypothesis) of the readers that take files from outside.

For any input, each reader either gives a correct result or raises its own
clear error (a ValueError naming the file), never another exception:

* ``pi_runtime.wav.read_wav`` on random bytes and on mutated valid WAV files;
* ``pi_runtime.sidecar.parse_sidecar`` on random JSON, mutated valid sidecars
  and mutated sidecar text, and what the runtime builds from a sidecar it accepts;
* ``pi_runtime.forecast.read_csv_readings`` on random rows, through the
  streaming forecaster and the printed line.

The number of examples comes from the Hypothesis profile (tests/conftest.py):
25 fixed examples by default, 2000 from a fresh seed under the "fuzz" profile
(``python -m tests.fuzz``).
"""
import json
import math
import struct
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (pip install -e '.[dev]')")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from native.params import FrontendParams, ModelInput  # noqa: E402
from pi_runtime.forecast import (MAX_LINE_CHARS, MAX_TIMESTAMP_S, MIN_TIMESTAMP_S, Event,  # noqa: E402
                                 ForecastSpec, StreamingForecaster, format_event, read_csv_readings)
from pi_runtime.labels import keyword_labels  # noqa: E402
from pi_runtime.sidecar import (KwsSpec, SidecarError, detector_settings, new_sidecar, output_kind,  # noqa: E402
                                parse_sidecar)
from pi_runtime.wav import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ, WavError, read_wav  # noqa: E402


@pytest.fixture(scope="module")
def wav_path(tmp_path_factory):
    """One file rewritten by every example (module scope: Hypothesis reruns the test body, not the fixture)."""
    return tmp_path_factory.mktemp("wav") / "example.wav"


def _wav_bytes(samples, rate):
    data = np.asarray(samples, "<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (2 * rate) & 0xFFFFFFFF, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def _read_or_refuse(path):
    """``read_wav(path)`` checked: a correct array and rate, or None after a WavError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the "unknown data size" warning
        try:
            samples, rate = read_wav(path)
        except WavError as error:
            assert str(path) in str(error)
            return None
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ
    assert 2 * samples.size <= path.stat().st_size
    return samples, rate


@given(st.binary(max_size=512))
def test_wav_reader_on_random_bytes(wav_path, data):
    wav_path.write_bytes(data)
    _read_or_refuse(wav_path)


@given(st.binary(max_size=200))
def test_wav_reader_on_random_bytes_after_a_riff_header(wav_path, tail):
    wav_path.write_bytes(b"RIFF" + struct.pack("<I", len(tail) + 4) + b"WAVE" + tail)
    _read_or_refuse(wav_path)


@st.composite
def mutated_wavs(draw):
    samples = draw(st.lists(st.integers(-32768, 32767), max_size=64))
    rate = draw(st.sampled_from([8000, 16000, 44100, 48000]) | st.integers(0, 2 ** 32 - 1))
    data = bytearray(_wav_bytes(samples, rate))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["byte", "word", "truncate", "append"]))
        if kind == "byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == "word" and len(data) >= 4:  # a size or a rate field: any 32-bit value
            at = draw(st.integers(0, len(data) - 4))
            data[at:at + 4] = struct.pack("<I", draw(st.sampled_from([0, 1, 0xFFFFFFFF, 1 << 30]) | st.integers(0, 2 ** 32 - 1)))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif kind == "append":
            data += draw(st.binary(max_size=32))
    return samples, rate, bytes(data)


@given(mutated_wavs())
def test_wav_reader_on_mutated_files(wav_path, case):
    samples, rate, data = case
    wav_path.write_bytes(data)
    result = _read_or_refuse(wav_path)
    if data == _wav_bytes(samples, rate):  # not mutated: read back exactly, or refused for its rate only
        if MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
            assert result is not None and result[1] == rate
            np.testing.assert_array_equal(result[0], np.asarray(samples, np.int16))
        else:
            assert result is None


# --- sidecars ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 12, 10 ** 12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)

INPUT = ModelInput().to_dict()
VALID_KWS = new_sidecar("kws", input=INPUT, frontend=FrontendParams().to_dict(), labels=["go", "stop", "_unknown_"],
                        keywords=["go", "stop"], output={"kind": "logits"},
                        detector={"threshold": 0.8, "smoothing_windows": 3, "hop_ms": 100.0,
                                  "refractory_ms": 1000.0, "min_level_dbfs": -55.0})
VALID_FORECAST = new_sidecar("forecast", forecast={
    "features": ["T (degC)", "rh (%)"], "input_width": 6, "out_steps": 6, "mean": [9.0, 76.0], "std": [8.0, 16.0],
    "time_step_s": 3600, "target": "delta", "time_features": ["hour_sin", "hour_cos"], "layout": "flat"})


def _accepted_or_refused(text):
    """``parse_sidecar(text)``: a SidecarError, or a sidecar whose parts the runtime can build."""
    try:
        sidecar = parse_sidecar(text, source="s.json")
    except SidecarError as error:
        assert str(error).startswith("s.json")
        return None
    output_kind(sidecar)
    settings = detector_settings(sidecar)
    assert all(not isinstance(value, float) or not math.isnan(value) for value in settings.values())
    if sidecar["task"] == "kws":
        FrontendParams.from_dict(sidecar["frontend"])
        try:
            keyword_labels(sidecar["labels"], sidecar.get("keywords"))
        except ValueError:  # a label list without any keyword: refused by the pipeline, clearly
            with pytest.raises(SidecarError, match="no keyword"):
                KwsSpec.from_sidecar(sidecar)
        else:
            assert KwsSpec.from_sidecar(sidecar).labels == tuple(sidecar["labels"])
    else:
        try:
            ForecastSpec.from_sidecar(sidecar)
        except ValueError:  # values the spec refuses (an unknown layout, ...): a clear error too
            pass
    return sidecar


@given(json_values)
def test_sidecar_reader_on_random_json(value):
    _accepted_or_refused(json.dumps(value))


def _paths(value, prefix=()):
    """Every key path into nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


@given(st.sampled_from([VALID_KWS, VALID_FORECAST]), st.data())
def test_sidecar_reader_on_mutated_sidecars(valid, data):
    sidecar = json.loads(json.dumps(valid))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from([p for p in _paths(sidecar) if p]))
        parent = sidecar
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    _accepted_or_refused(json.dumps(sidecar))


@given(st.sampled_from([VALID_KWS, VALID_FORECAST]), st.data())
def test_sidecar_reader_on_mutated_text(valid, data):
    text = json.dumps(valid)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        insert = data.draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000, "[" * 2000,
                                            "\x00", '"', "}", ","]) | st.text(max_size=4))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + insert + text[at + cut:]
    _accepted_or_refused(text)


def test_untouched_sidecars_are_accepted():
    assert _accepted_or_refused(json.dumps(VALID_KWS)) == VALID_KWS
    assert _accepted_or_refused(json.dumps(VALID_FORECAST)) == VALID_FORECAST


# --- the forecaster's readings --------------------------------------------------------------------------

SPEC = ForecastSpec(features=("T (degC)", "rh (%)"), input_width=3, out_steps=2,
                    mean=np.array([9.0, 76.0], np.float32), std=np.array([8.0, 16.0], np.float32),
                    time_step_s=3600, target="delta", time_features=("hour_sin", "hour_cos"), layout="flat")


class _ZeroForecaster:
    """What StreamingForecaster needs of a Forecaster, without a model file."""

    spec = SPEC

    def predict_rows(self, rows):
        assert rows.shape == (SPEC.input_width, SPEC.row_width) and np.isfinite(rows).all()
        return np.zeros((SPEC.out_steps, len(SPEC.features)), np.float32)


numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10 ** 25, 10 ** 25)
timestamps = (
    st.integers(0, 2 * 10 ** 9).map(lambda s: str(1230768000 + 3600 * (s % 5000)))  # mostly hourly, in order
    | numbers.map(str)
    | st.datetimes().map(lambda moment: moment.isoformat())
    | st.datetimes().map(lambda moment: moment.strftime("%d.%m.%Y %H:%M:%S"))
    | st.sampled_from(["2010-07-01T12:00:00+02:00", "2010-07-01T12:00:00Z", "inf", "nan", "1e20", "1e15", ""])
    | st.text(max_size=20))
cells = numbers.map(str) | st.floats(-100, 110).map(lambda v: f"{v:.2f}") | st.text(max_size=8)
rows = st.tuples(timestamps, cells, cells).map(lambda row: ",".join(row))
odd_lines = st.sampled_from(["", ",,,", "a,b,c,d,e", '"unclosed,1,2', "1,2\x00,3", "\ufeff1,2,3"]) \
    | st.integers(MAX_LINE_CHARS - 2, MAX_LINE_CHARS + 2).map(lambda n: "7" * n)


@given(st.lists(rows | odd_lines, max_size=40), st.booleans(), st.booleans())
def test_csv_readings_give_per_line_problems_never_a_traceback(lines, byte_order_mark, as_file):
    import io

    text = ("\ufeff" if byte_order_mark else "") + "timestamp,T,RH\n" + "\n".join(lines) + "\n"
    source = io.StringIO(text, newline="") if as_file else text.splitlines(keepends=True)
    streaming = StreamingForecaster(_ZeroForecaster())
    for timestamp_s, values, problem in read_csv_readings(source, SPEC.features, source="r.csv"):
        if problem:
            line_number = int(problem.split(":")[0].removeprefix("line "))
            assert 2 <= line_number <= len(text.splitlines())  # a cell may hold a line break of its own
        else:
            assert MIN_TIMESTAMP_S <= timestamp_s <= MAX_TIMESTAMP_S and len(values) == 2
        event = streaming.push(timestamp_s, values)
        assert isinstance(event, Event) and event.status in ("forecast", "filling", "invalid", "gap")
        assert isinstance(format_event(event, SPEC), str)
