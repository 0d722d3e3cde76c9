"""A toy keyword-spotting model for the streaming tests: three "words" made of tones.

``low`` is a 300-500 Hz tone, ``high`` a 2-3 kHz tone and ``chirp`` a sweep
from 500 Hz to 3 kHz, each 0.3-0.6 s long somewhere in a one-second clip. A
tiny convolutional model learns them in a few seconds from features computed
by the native frontend, is exported with ``tf.lite.TFLiteConverter`` and gets
a sidecar, like a delivered model. No data set is needed, so the mechanics of
the pipeline (timing, resampling, gating, refractory) are tested everywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

from native.params import FrontendParams, ModelInput

TOY_LABELS = ["low", "high", "chirp"]
TOY_PARAMS = FrontendParams()  # the course's MFCC frontend
TOY_INPUT = ModelInput(frontend=TOY_PARAMS)  # one second: 49 x 10
WORD_RATE_HZ = 16000


def tone_word(label: str, duration_s: float, amplitude: float, rng: np.random.Generator,
              rate_hz: int = WORD_RATE_HZ) -> np.ndarray:
    """float32 samples of one toy word, with 10 ms fades so its edges do not click."""
    t = np.arange(int(duration_s * rate_hz)) / rate_hz
    if label == "low":
        phase = 2 * np.pi * rng.uniform(300, 500) * t
    elif label == "high":
        phase = 2 * np.pi * rng.uniform(2000, 3000) * t
    elif label == "chirp":
        start_hz, end_hz = 500.0, 3000.0
        phase = 2 * np.pi * (start_hz * t + (end_hz - start_hz) * t ** 2 / (2 * duration_s))
    else:
        raise ValueError(label)
    fade = np.minimum(1.0, np.minimum(t, duration_s - t) / 0.01)
    return (amplitude * fade * np.sin(phase)).astype(np.float32)


def build_stream(events: Sequence[Tuple[float, str]], total_s: float, *, rate_hz: int = WORD_RATE_HZ,
                 word_s: float = 0.4, noise_dbfs: float = -70.0, seed: int = 0) -> np.ndarray:
    """int16 audio of ``total_s`` seconds with toy words starting at the given times (s)."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(scale=10 ** (noise_dbfs / 20), size=int(total_s * rate_hz)).astype(np.float32)
    for start_s, label in events:
        word = tone_word(label, word_s, 0.3, rng, rate_hz)
        start = int(start_s * rate_hz)
        audio[start:start + word.size] += word
    return np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)


def _training_set(count: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    from native.frontend import Frontend

    rng = np.random.default_rng(seed)
    clip_samples = TOY_INPUT.clip_length_samples
    clips = np.zeros((count, clip_samples), dtype=np.float32)
    labels = rng.integers(0, len(TOY_LABELS), size=count)
    for clip, label in zip(clips, labels):
        word = tone_word(TOY_LABELS[label], rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.5), rng)
        # Words partly outside the window too, as a sliding window sees them.
        start = int(rng.uniform(-0.2, 1.0 - word.size / WORD_RATE_HZ + 0.2) * WORD_RATE_HZ)
        lo, hi = max(start, 0), min(start + word.size, clip_samples)
        clip[lo:hi] = word[lo - start:hi - start]
        clip += rng.normal(scale=10 ** (rng.uniform(-80, -50) / 20), size=clip_samples).astype(np.float32)
    return Frontend(TOY_PARAMS).compute_batch(clips), labels


def build_toy_model(folder: Path) -> Path:
    """Train, export and write the sidecar of the toy model in ``folder``; returns the .tflite path.

    Reuses a model already built in ``folder`` (several test modules share one per session).
    """
    from pi_runtime.sidecar import KwsSpec, write_sidecar

    model_path = Path(folder) / "toy_tones.tflite"
    if model_path.is_file():
        return model_path
    from train.keras_env import keras, tf

    keras.utils.set_random_seed(0)
    features, labels = _training_set(600, seed=0)
    frames, coefficients = TOY_INPUT.feature_shape
    inputs = keras.Input(shape=(frames, coefficients))
    x = keras.layers.Reshape((frames, coefficients, 1))(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    outputs = keras.layers.Dense(len(TOY_LABELS), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(features, labels, epochs=15, batch_size=32, verbose=0)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    spec = KwsSpec(input=TOY_INPUT, labels=tuple(TOY_LABELS), output_kind="probabilities")
    write_sidecar(model_path, spec.to_sidecar(training={"what": "toy tone model for tests"}))
    return model_path


def expected_window(start_s: float, word_s: float = 0.4, clip_s: float = 1.0,
                    slack_s: float = 0.35) -> Tuple[float, float]:
    """Times (s) a detection of a word starting at ``start_s`` may carry: the window's end
    lies after most of the word and before the word has left the window (plus smoothing)."""
    return start_s + 0.5 * word_s, start_s + clip_s + slack_s


def random_decisions(labels: Sequence[str], count: int, seed: int) -> list:
    """Per-window posteriors for replay tests: a label that changes now and then, held with a random
    weight over Dirichlet noise; a tenth of the windows at -70 dBFS (under a -55 dBFS gate), the rest at -20."""
    from pi_runtime.kws_pipeline import Decision

    rng = np.random.default_rng(seed)
    decisions, current = [], 0
    for k in range(count):
        if rng.random() < 0.2:
            current = int(rng.integers(len(labels)))
        weight = rng.random()
        probabilities = weight * np.eye(len(labels))[current] + (1 - weight) * rng.dirichlet(np.ones(len(labels)))
        level = -70.0 if rng.random() < 0.1 else -20.0
        decisions.append(Decision(1.0 + 0.1 * k, level, probabilities.astype(np.float32)))
    return decisions
