"""Limits of a delivered model and the PASS/FAIL table the version CLIs print.

A version CLI collects one :class:`Limit` per requirement (size, accuracy, MAE,
latency), prints them with :func:`check_limits` and exits non-zero when any is
missed::

    limits = [Limit("file size", size_bytes / 1000, 2.0, "kB", "<"),
              Limit("T MAE", mae_t, 0.5, "degC", "<")]
    sys.exit(0 if check_limits(limits) else 1)
"""
from __future__ import annotations

import math
import operator
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, TextIO

_OPERATORS: Dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Limit:
    """One requirement: ``measured <op> bound``.

    Parameters
    ----------
    name : what is measured ("file size", "T MAE", "accuracy").
    measured : the measured value, in ``unit``.
    bound : the limit, in ``unit``.
    unit : unit of both numbers ("kB", "degC", "%", "ms").
    op : one of ``<``, ``<=``, ``>``, ``>=``; the comparison that must hold.
    """

    name: str
    measured: float
    bound: float
    unit: str = ""
    op: str = "<"

    def __post_init__(self):
        if self.op not in _OPERATORS:
            raise ValueError(f"Limit {self.name!r}: op must be one of {sorted(_OPERATORS)}, got {self.op!r}")

    @property
    def passed(self) -> bool:
        """True when the measurement meets the bound. A NaN measurement always fails."""
        measured = float(self.measured)
        if math.isnan(measured):
            return False
        return _OPERATORS[self.op](measured, float(self.bound))


def _format_number(value: float) -> str:
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3e}"


def format_limits_table(limits: Iterable[Limit]) -> str:
    """Markdown table with one row per limit: name, measured, limit, unit, PASS/FAIL."""
    rows = [("limit", "measured", "required", "unit", "result")]
    for limit in limits:
        rows.append(
            (
                limit.name,
                _format_number(limit.measured),
                f"{limit.op} {_format_number(limit.bound)}",
                limit.unit,
                "PASS" if limit.passed else "FAIL",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines)


def check_limits(limits: Iterable[Limit], *, stream: TextIO | None = None) -> bool:
    """Print the limits table (and a one-line verdict) and return whether every limit passed.

    Parameters
    ----------
    limits : the limits to check; an empty list is an error (nothing checked is not a pass).
    stream : where to print; ``sys.stdout`` by default.
    """
    limits = list(limits)
    if not limits:
        raise ValueError("check_limits needs at least one limit")
    stream = stream or sys.stdout
    print(format_limits_table(limits), file=stream)
    failed = [limit.name for limit in limits if not limit.passed]
    if failed:
        print(f"FAIL: {len(failed)} of {len(limits)} limits missed ({', '.join(failed)})", file=stream)
    else:
        print(f"PASS: all {len(limits)} limits met", file=stream)
    return not failed
