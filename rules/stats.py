"""Order statistics for the cockpit's timeliness figures: the median and the nearest-rank percentile."""

from __future__ import annotations

import math
from collections.abc import Sequence


def median(values: Sequence[int]) -> float | None:
    """The middle value; the mean of the two middle ones for an even count; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    mid, odd = divmod(len(ordered), 2)
    return float(ordered[mid]) if odd else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[int], p: int) -> int | None:
    """The nearest-rank percentile (the smallest value with at least p% of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]
