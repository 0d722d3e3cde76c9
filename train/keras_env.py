"""Import TensorFlow with Keras 2 (tf_keras), which tensorflow-model-optimization needs.

``TF_USE_LEGACY_KERAS`` only works when set before TensorFlow is first
imported, so every module of ``train`` takes TensorFlow from here::

    from train.keras_env import tf, keras
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

if os.environ["TF_USE_LEGACY_KERAS"] != "1":  # pragma: no cover - user override
    raise RuntimeError("train needs TF_USE_LEGACY_KERAS=1 (tensorflow-model-optimization works with Keras 2 only)")

__all__ = ["tf", "keras"]
