"""Argument checks shared by the Python layers of the native modules."""
import operator


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
