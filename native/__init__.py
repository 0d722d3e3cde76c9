"""Native (Cython + C) pieces of the toolkit: audio frontend, resampler, ring buffers.

Depends on numpy only, so it builds and runs on a Raspberry Pi without TensorFlow.
"""
from native.params import FrontendParams, ModelInput

__all__ = ["FrontendParams", "ModelInput"]

from native.ring import AudioRing, RowRing  # noqa: E402

__all__ += ["AudioRing", "RowRing"]

from native.frontend import Frontend, StreamingFrontend  # noqa: E402

__all__ += ["Frontend", "StreamingFrontend"]

from native.resample import Resampler, ratio_for, resample_poly  # noqa: E402

__all__ += ["Resampler", "ratio_for", "resample_poly"]
