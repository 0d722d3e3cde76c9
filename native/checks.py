"""Argument checks shared by the Python layers of the native modules."""
import operator

from native._frontend import STATUS_NON_FINITE, STATUS_OUT_OF_RANGE

# The range of float32 audio the native code accepts (native/src/samples.h):
# float audio is expected in [-1, 1]; beyond +-MAX_ABS_SAMPLE (or NaN/Inf) it is
# refused, and |x| < MIN_ABS_SAMPLE is read as 0 (no subnormal arithmetic).
MAX_ABS_SAMPLE = 1e6
MIN_ABS_SAMPLE = 2.0 ** -64


def raise_for_samples(status: int, what: str) -> None:
    """ValueError for a negative status of the native sample check (NaN/Inf, or out of range)."""
    if status == STATUS_NON_FINITE:
        raise ValueError(f"{what} contains NaN or Inf (NaN or infinite samples are refused)")
    if status == STATUS_OUT_OF_RANGE:
        raise ValueError(f"{what} has samples beyond +-{MAX_ABS_SAMPLE:g} (float audio is expected in "
                         "[-1, 1]; scale it first)")


def positive_int(value, name: str) -> int:
    """``value`` as an int if it is a positive integer (bool refused); else ValueError naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer, got {number}")
    return number
