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


def _nth(counts: Sequence[tuple[int, int]], rank: int) -> int:
    """The rank-th (1-based) value of a histogram of (value, count) in ascending order of value."""
    seen = 0
    for value, n in counts:
        seen += n
        if seen >= rank:
            return value
    raise ValueError(rank)


def median_of_counts(counts: Sequence[tuple[int, int]]) -> float | None:
    """median() of the values a histogram of (value, count) stands for."""
    ordered = sorted((v, n) for v, n in counts if n > 0)
    total = sum(n for _, n in ordered)
    if not total:
        return None
    mid, odd = divmod(total, 2)
    return float(_nth(ordered, mid + 1)) if odd else (_nth(ordered, mid) + _nth(ordered, mid + 1)) / 2


def percentile_of_counts(counts: Sequence[tuple[int, int]], p: int) -> int | None:
    """percentile() of the values a histogram of (value, count) stands for."""
    ordered = sorted((v, n) for v, n in counts if n > 0)
    total = sum(n for _, n in ordered)
    if not total:
        return None
    return _nth(ordered, max(1, math.ceil(p * total / 100)))
