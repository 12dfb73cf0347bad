"""Eligibility conditions compiled to SQL: a WHERE clause over `enterprise` for many enterprises at once.

It selects exactly the enterprises `rules.conditions.evaluate` calls eligible (a property test proves it on SQLite and
PostgreSQL): SQL's NULL is the same three-valued logic evaluate uses, and a NULL tag list counts as an empty list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import Boolean, ColumnElement, String, and_, func, literal, literal_column, not_, or_, type_coerce
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from db.models import Enterprise
from schemas.conditions import AllOf, AnyOf, Leaf, Node, NotOf, parse_condition
from schemas.fields import FIELDS

__all__ = ["TagMatch", "compile_where"]


class TagMatch(ColumnElement[bool]):
    """True when a JSON tag list holds any / all of the given tags; a NULL or JSON-null list holds none.

    Compiles to JSONB `@>` / `?|` on PostgreSQL and to EXISTS over json_each() elsewhere (SQLite), so
    one expression object serves both dialects. The tags are part of the cache key.
    """

    __visit_name__ = "zhida_tag_match"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's traversal protocol
        ("column", InternalTraversal.dp_clauseelement),
        ("mode", InternalTraversal.dp_string),
        ("tags", InternalTraversal.dp_string_list),
    ]
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], mode: Literal["any", "all"], tags: Sequence[str]) -> None:
        if mode not in ("any", "all") or not tags:
            raise ValueError("TagMatch needs mode 'any' or 'all' and at least one tag")
        self.column = column
        self.mode = mode
        self.tags = list(dict.fromkeys(tags))

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects


@compiles(TagMatch)
def _tag_match_json_each(element: TagMatch, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    binds = [compiler.process(literal(tag, String()), **kw) for tag in element.tags]
    exists = "EXISTS (SELECT 1 FROM json_each({col}) AS tag_item WHERE tag_item.value {test})"
    if element.mode == "any":
        return "(" + exists.format(col=column, test=f"IN ({', '.join(binds)})") + ")"
    return "(" + " AND ".join(exists.format(col=column, test=f"= {bind}") for bind in binds) + ")"


@compiles(TagMatch, "postgresql")
def _tag_match_jsonb(element: TagMatch, compiler: SQLCompiler, **kw: Any) -> str:
    doc = type_coerce(func.coalesce(element.column, literal_column("'[]'::jsonb")), postgresql.JSONB())
    if element.mode == "any":
        expr = doc.has_any(postgresql.array([literal(tag, String()) for tag in element.tags]))
    else:
        expr = doc.contains(list(element.tags))
    return f"({compiler.process(expr, **kw)})"


def _leaf_sql(leaf: Leaf) -> ColumnElement[bool]:
    spec = FIELDS[leaf.field]
    column = Enterprise.__table__.c[spec.column]
    value = leaf.value
    match leaf.op:
        case "eq":
            return column == value
        case "ne":
            return column != value
        case "gt":
            return column > value
        case "ge":
            return column >= value
        case "lt":
            return column < value
        case "le":
            return column <= value
        case "between":
            return column.between(value[0], value[1])
        case "in":
            return column.in_(value)
        case "not_in":
            return column.not_in(value)
        case "prefix":
            # substr, not LIKE: LIKE is case-insensitive on SQLite and would need escaping of % and _.
            return func.substr(column, 1, len(value)) == value
        case "has_tag":
            return TagMatch(column, "all", [value])
        case "has_any_tags":
            return TagMatch(column, "any", value)
        case "has_all_tags":
            return TagMatch(column, "all", value)
    raise AssertionError(leaf.op)  # pragma: no cover


def compile_where(cond: Node | Mapping[str, Any]) -> ColumnElement[bool]:
    """A WHERE clause over `enterprise` selecting exactly the enterprises `evaluate` calls eligible."""
    tree = cond if isinstance(cond, AllOf | AnyOf | NotOf | Leaf) else parse_condition(cond)
    if isinstance(tree, AllOf):
        return and_(*(compile_where(item) for item in tree.items))
    if isinstance(tree, AnyOf):
        return or_(*(compile_where(item) for item in tree.items))
    if isinstance(tree, NotOf):
        return not_(compile_where(tree.item))
    return _leaf_sql(tree)
