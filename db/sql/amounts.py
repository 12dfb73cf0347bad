"""Support standards compiled to SQL: the amount in fen of every enterprise a query touches, in the database.

`amount_expr(standard)` gives exactly `min(rules.amounts.compute_amount(standard, row).amount_fen, MAX_FEN)`
for each `enterprise` row (a property test proves it on SQLite and PostgreSQL): half-up rounding to the fen
(ROUND_HALF_UP), a negative base counting 0 before the floor, missing base data counting 0, caps after
rounding and after adding parts. No floating point is involved anywhere:

- a rate is the exact fraction num/den of its decimal text (Fraction(Decimal("0.05")) = 1/20);
- PostgreSQL computes in NUMERIC (arbitrary precision) and `div()` truncates exactly, so
  round_half_up(base × num/den) = div(2·base·num + den, 2·den) for base > 0;
- SQLite has only 64-bit integers (an overflowing product silently turns into a float), so base × num/den
  is split: num/den = I + p/den, and base into k-bit limbs l_j (base = Σ l_j·2^(k·j)) with
  2^(k·j)·p = A_j·den + a_j precomputed here; then base·p/den = Σ l_j·A_j + Σ (l_j·a_j)/den, where every
  product stays below 2^63. This is exact for any base when the reduced denominator is below about 2^56
  (rates with up to 16 decimal places); a finer rate raises a clear ValueError on SQLite only.

Amounts above MAX_FEN (2^63 − 1 fen, 9.2×10^16 元) cannot be stored or paid; the expression saturates there
(SQLite's integer overflow turns into a float ≥ 2^63, which the final min() maps to MAX_FEN exactly).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Numeric, case, cast, false, func, literal_column, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from db.models import Enterprise
from schemas.fields import FIELDS
from schemas.standards import AnyStandard, FixedAmount, ManualAmount, RateOfBase, SumOfParts, Tiered, parse_standard

__all__ = ["MAX_FEN", "amount_expr", "limb_plan", "unquantified_expr"]

MAX_FEN = 2**63 - 1
_INT64_LIMIT = 2**63  # every SQLite intermediate must stay below this
_BASE_BITS = 63  # a BIGINT base is below 2^63


def _n(value: int) -> ColumnElement[int]:
    """An integer constant inlined in the SQL (integers only, so nothing can be injected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"integer constant expected, got {value!r}")
    return literal_column(str(value) if value >= 0 else f"({value})", BigInteger())


def _column(field: str) -> ColumnElement[int]:
    return Enterprise.__table__.c[FIELDS[field].column]


# --------------------------------------------------------------------------- portable min / max


class _Extreme(ColumnElement[int]):
    """LEAST / GREATEST of two values: scalar min()/max() on SQLite, LEAST/GREATEST on PostgreSQL."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's traversal protocol
        ("left", InternalTraversal.dp_clauseelement),
        ("right", InternalTraversal.dp_clauseelement),
    ]
    type = BigInteger()
    sqlite_name = ""
    sql_name = ""

    def __init__(self, left: ColumnElement[Any], right: ColumnElement[Any]) -> None:
        self.left = left
        self.right = right

    @property
    def _from_objects(self) -> list[Any]:
        return [*self.left._from_objects, *self.right._from_objects]


class _Least(_Extreme):
    __visit_name__ = "zhida_least"
    inherit_cache = True
    sqlite_name = "min"
    sql_name = "LEAST"


class _Greatest(_Extreme):
    __visit_name__ = "zhida_greatest"
    inherit_cache = True
    sqlite_name = "max"
    sql_name = "GREATEST"


@compiles(_Least)
@compiles(_Greatest)
def _extreme_default(element: _Extreme, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's two-argument min()/max() are scalar; no NULL ever reaches them (NULL bases are handled first).
    return f"{element.sqlite_name}({compiler.process(element.left, **kw)}, {compiler.process(element.right, **kw)})"


@compiles(_Least, "postgresql")
@compiles(_Greatest, "postgresql")
def _extreme_postgresql(element: _Extreme, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{element.sql_name}({compiler.process(element.left, **kw)}, {compiler.process(element.right, **kw)})"


# --------------------------------------------------------------------------- base × num/den, half-up


def limb_plan(den: int) -> int | None:
    """Limb width k (bits) for exact SQLite arithmetic with denominator `den`, or None if none works.

    Constraints: a limb times a remainder, (2^k − 1)(den − 1), and the rounding numerator over n limbs,
    2·n·(den − 1) + den, must both stay below 2^63. Wider limbs mean a shorter expression.
    """
    for bits in range(32, 0, -1):
        limbs = -(-_BASE_BITS // bits)
        if (2**bits - 1) * (den - 1) < _INT64_LIMIT and 2 * limbs * (den - 1) + den < _INT64_LIMIT:
            return bits
    return None


class HalfUpProduct(ColumnElement[int]):
    """round_half_up(base × num / den) for a positive integer base, computed exactly (callers guard base > 0)."""

    __visit_name__ = "zhida_half_up_product"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's traversal protocol
        ("base", InternalTraversal.dp_clauseelement),
        ("num", InternalTraversal.dp_plain_obj),
        ("den", InternalTraversal.dp_plain_obj),
    ]
    type = BigInteger()

    def __init__(self, base: ColumnElement[int], rate: Fraction) -> None:
        if rate < 0:
            raise ValueError(f"rate must not be negative: {rate}")
        self.base = base
        self.num = rate.numerator
        self.den = rate.denominator

    @property
    def _from_objects(self) -> list[Any]:
        return self.base._from_objects


@compiles(HalfUpProduct, "postgresql")
def _half_up_numeric(element: HalfUpProduct, compiler: SQLCompiler, **kw: Any) -> str:
    base = cast(element.base, Numeric())
    expr = func.div(base * _n(2 * element.num) + _n(element.den), _n(2 * element.den))
    return compiler.process(expr, **kw)


@compiles(HalfUpProduct)
def _half_up_limbs(element: HalfUpProduct, compiler: SQLCompiler, **kw: Any) -> str:
    num, den, base = element.num, element.den, element.base
    whole, p = divmod(num, den)
    terms: list[ColumnElement[int]] = []
    if whole:
        terms.append(base * _n(whole))  # overflows into a float only when the amount itself exceeds MAX_FEN
    if p:
        bits = limb_plan(den)
        if bits is None:
            raise ValueError(
                f"standard：比例 {Fraction(num, den)} 的小数位数过多，SQLite 无法精确批量计算（分母 {den} 超过约 2^56）；"
                f"请使用不超过 16 位小数的比例，或使用 PostgreSQL / rate {num}/{den} is too fine for exact SQLite "
                "arithmetic"
            )
        remainders: list[ColumnElement[int]] = []
        for j in range(-(-_BASE_BITS // bits)):
            shift = 2 ** (bits * j)
            limb = base // _n(shift) if shift > 1 else base
            if bits * (j + 1) < _BASE_BITS:
                limb = limb % _n(2**bits)
            big, small = divmod(shift * p, den)
            if big:
                terms.append(limb * _n(big))
            if small:
                product = limb * _n(small)
                terms.append(product // _n(den))
                remainders.append(product % _n(den))
        rest = remainders[0]
        for item in remainders[1:]:
            rest = rest + item
        terms.append((_n(2) * rest + _n(den)) // _n(2 * den) if remainders else _n(0))
    if not terms:
        return compiler.process(_n(0), **kw)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return compiler.process(total, **kw)


class _Wide(ColumnElement[int]):
    """A part of a sum: NUMERIC on PostgreSQL (BIGINT + BIGINT may overflow there), unchanged on SQLite."""

    __visit_name__ = "zhida_wide"
    inherit_cache = True
    _traverse_internals = [("value", InternalTraversal.dp_clauseelement)]  # noqa: RUF012
    type = BigInteger()

    def __init__(self, value: ColumnElement[int]) -> None:
        self.value = value

    @property
    def _from_objects(self) -> list[Any]:
        return self.value._from_objects


@compiles(_Wide)
def _wide_default(element: _Wide, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.value, **kw)


@compiles(_Wide, "postgresql")
def _wide_postgresql(element: _Wide, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(cast(element.value, Numeric()), **kw)


class _Saturate(ColumnElement[int]):
    """The final amount held to MAX_FEN; BIGINT on both dialects."""

    __visit_name__ = "zhida_saturate"
    inherit_cache = True
    _traverse_internals = [("value", InternalTraversal.dp_clauseelement)]  # noqa: RUF012
    type = BigInteger()

    def __init__(self, value: ColumnElement[int]) -> None:
        self.value = value

    @property
    def _from_objects(self) -> list[Any]:
        return self.value._from_objects


@compiles(_Saturate)
def _saturate_default(element: _Saturate, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(_Least(element.value, _n(MAX_FEN)), **kw)


@compiles(_Saturate, "postgresql")
def _saturate_postgresql(element: _Saturate, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(cast(_Least(element.value, _n(MAX_FEN)), BigInteger()), **kw)


# --------------------------------------------------------------------------- standards


def _times_rate(base: ColumnElement[int], rate: Fraction) -> ColumnElement[int]:
    """max(0, round_half_up(base × rate)) for a non-NULL base."""
    if rate == 0:
        return _n(0)
    return case((base > 0, HalfUpProduct(base, rate)), else_=_n(0))


def _capped(value: ColumnElement[int], cap_fen: int | None) -> ColumnElement[int]:
    return value if cap_fen is None else _Least(value, _n(cap_fen))


def _rate(standard: RateOfBase) -> ColumnElement[int]:
    base = _column(standard.base)
    rate = standard.rate_value()
    assert rate is not None  # the model requires rate or rate_bp
    value = _times_rate(base, Fraction(rate))
    if standard.floor_fen is not None:
        value = _Greatest(value, _n(standard.floor_fen))
    value = _capped(value, standard.cap_fen)
    return case((base.is_(None), _n(0)), else_=value)


def _tiers(standard: Tiered) -> ColumnElement[int]:
    base = _column(standard.base)
    whens: list[tuple[ColumnElement[bool], ColumnElement[int]]] = [(base.is_(None), _n(0))]
    for tier in reversed(standard.tiers):  # the highest tier reached decides
        if tier.amount_fen is not None:
            pays = _n(tier.amount_fen)
        else:
            rate = tier.rate_value()
            assert rate is not None  # the model requires exactly one of amount_fen, rate, rate_bp
            pays = _times_rate(base, Fraction(rate))
        whens.append((base >= _n(tier.at_least), pays))
    return _capped(case(*whens, else_=_n(0)), standard.cap_fen)


def _sum(standard: SumOfParts) -> ColumnElement[int]:
    parts = [_Wide(_expr(part)) for part in standard.parts]
    total = parts[0]
    for part in parts[1:]:
        total = total + part  # all parts are ≥ 0; an overflow can only push the sum up to the cap / MAX_FEN
    return _capped(total, standard.cap_fen)


def _expr(standard: AnyStandard) -> ColumnElement[int]:
    match standard:
        case FixedAmount():
            return _n(standard.amount_fen)
        case RateOfBase():
            return _rate(standard)
        case Tiered():
            return _tiers(standard)
        case SumOfParts():
            return _sum(standard)
        case ManualAmount():
            return _n(0)
    raise TypeError(f"未知的扶持标准类型：{type(standard).__name__}")


def _parsed(standard: AnyStandard | Mapping[str, Any]) -> AnyStandard:
    return standard if isinstance(standard, AnyStandard) else parse_standard(standard)


def amount_expr(standard: AnyStandard | Mapping[str, Any]) -> ColumnElement[int]:
    """The amount in fen each `enterprise` row gets under `standard` (= compute_amount, held to MAX_FEN)."""
    return _Saturate(_expr(_parsed(standard)))


def _unquantified(standard: AnyStandard) -> list[ColumnElement[bool]] | None:
    """Conditions that make the amount not fully quantified; None means 'always' (a manual part)."""
    match standard:
        case FixedAmount():
            return []
        case ManualAmount():
            return None
        case RateOfBase() | Tiered():
            return [_column(standard.base).is_(None)]
        case SumOfParts():
            found: list[ColumnElement[bool]] = []
            for part in standard.parts:
                sub = _unquantified(part)
                if sub is None:
                    return None
                found += sub
            return found
    raise TypeError(f"未知的扶持标准类型：{type(standard).__name__}")


def unquantified_expr(standard: AnyStandard | Mapping[str, Any]) -> ColumnElement[bool]:
    """True for the rows where compute_amount says `quantified=False` (missing base data or a manual part)."""
    found = _unquantified(_parsed(standard))
    if found is None:
        return true()
    if not found:
        return false()
    unique = {str(c.compile()): c for c in found}
    return or_(*unique.values())
