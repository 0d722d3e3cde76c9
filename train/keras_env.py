"""Import TensorFlow with Keras 2 (tf_keras), which tensorflow-model-optimization needs.

``TF_USE_LEGACY_KERAS`` only works when set before TensorFlow is first
imported, so every module of ``train`` takes TensorFlow from here::

    from train.keras_env import tf, keras

TensorFlow's start-up lines (CUDA not found, CPU instructions) are kept off
the terminal: ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 and the lines TensorFlow
prints before it reads that setting are filtered out
(:func:`pi_runtime.quiet.tensorflow_startup_filtered`). ``TF_CPP_MIN_LOG_LEVEL=0``
shows them all.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from pi_runtime.quiet import tensorflow_startup_filtered  # noqa: E402

with tensorflow_startup_filtered():
    import tensorflow as tf
    import tf_keras as keras

    tf.config.list_physical_devices()  # looks for a GPU now, while its "no CUDA" error is filtered

if os.environ["TF_USE_LEGACY_KERAS"] != "1":  # pragma: no cover - user override
    raise RuntimeError("train needs TF_USE_LEGACY_KERAS=1 (tensorflow-model-optimization works with Keras 2 only)")

__all__ = ["tf", "keras"]
