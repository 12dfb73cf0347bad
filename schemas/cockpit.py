"""What the finance cockpit (财政看板) is asked for: filters that narrow every figure, and the drill-down keys."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from urllib.parse import urlencode

from schemas.vocabulary import CaseStatus


@dataclass(frozen=True)
class CockpitFilter:
    """Filters on the cases behind every figure; None means all. `region` is an enterprise's division code."""

    fund_item_id: int | None = None
    department_id: int | None = None
    region: str | None = None
    source: str | None = None
    status: CaseStatus | None = None
    # Drill-down keys: the figure a list of cases comes from.
    budget_line_id: int | None = None
    paid_month: str | None = None  # YYYY-MM, Beijing time
    overdue_department: str | None = None  # a department code with an overdue stage on the case

    def with_(self, **changes: object) -> CockpitFilter:
        return replace(self, **changes)

    def query(self, **changes: object) -> str:
        """The filter as a query string (for links that drill down from a figure); other keys (format, page) are
        appended as they are."""
        # The fields read directly (asdict deep-copies; a page links a thousand items): the same mapping.
        values = {name: getattr(self, name) for name in _FIELDS}
        values |= changes
        return urlencode({k: str(v) for k, v in values.items() if v not in (None, "")})

    @property
    def any(self) -> bool:
        return any(v not in (None, "") for v in asdict(self).values())


_FIELDS = tuple(f.name for f in fields(CockpitFilter))
