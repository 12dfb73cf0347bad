"""Condition trees compiled once per frozen fund-item version for the policy calculator (政策计算器): the truth and the
不足之处 of one enterprise in one pass of closures, with plain values in the hot path.

Same logic as rules/conditions.py, by construction: the truth of each sub-tree is `compile_truth`'s (Kleene logic),
the walk is `shortfalls`' (negation pushed to the leaves, only the leaves that keep a group from being true are
explained) and each leaf is explained by `_leaf_result` itself. What differs is the cost: a leaf's explanation depends
only on the leaf and the enterprise's value of its field, so it is computed once per (leaf, value) and kept (the same
leaves recur across the listed items: region, credit, size…), and the result is a tuple of frozen `Blocking` values,
not pydantic models. tests/rules/test_compiled.py proves it equal to `shortfalls` over generated trees and facts."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.conditions import _TRUTH, Truth, _and, _holds, _leaf_result, _or
from schemas.conditions import AllOf, AnyOf, Leaf, Node, NotOf
from schemas.fields import FIELDS

# Explained leaves kept at most (a process serving many enterprises starts again when full).
CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Blocking:
    """One leaf that keeps the tree from being true (不足之处): its field, label, the Chinese text, and whether the
    enterprise's value is missing."""

    field: str
    label: str
    text: str
    missing: bool


Explain = Callable[[Mapping[str, Any], list], Truth]
_explained: dict[tuple, tuple[Truth, Blocking | None]] = {}


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


Test = Callable[[Mapping[str, Any]], Truth]
_ORDERED = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt,
            "le": operator.le}  # fmt: skip


def _leaf_truth(leaf: Leaf) -> Test:
    """One leaf's truth as a closure specialised to its operator (rules.conditions._holds, without the dispatch)."""
    name, op, value = FIELDS[leaf.field].name, leaf.op, leaf.value
    get = None
    if op in _ORDERED:
        compare = _ORDERED[op]

        def get(facts: Mapping[str, Any]) -> Truth:
            actual = facts.get(name)
            return None if actual is None else compare(actual, value)
    elif op == "between":
        low, high = value

        def get(facts: Mapping[str, Any]) -> Truth:
            actual = facts.get(name)
            return None if actual is None else low <= actual <= high
    elif op == "prefix":

        def get(facts: Mapping[str, Any]) -> Truth:
            actual = facts.get(name)
            return None if actual is None else actual.startswith(value)
    elif op == "has_tag":

        def get(facts: Mapping[str, Any]) -> Truth:
            actual = facts.get(name)
            return None if actual is None else value in actual
    elif op == "has_any_tags":
        wanted = tuple(value)

        def get(facts: Mapping[str, Any]) -> Truth:
            actual = facts.get(name)
            return None if actual is None else any(tag in actual for tag in wanted)
    if get is not None:
        return get

    def other(facts: Mapping[str, Any]) -> Truth:
        actual = facts.get(name)
        return None if actual is None else _holds(op, actual, value)

    return other


def compile_truth(cond: Node) -> Test:
    """The tree's three-valued truth as nested closures: rules.conditions.compile_truth's logic (an `all` stops at a
    false item, an `any` at a true one), with each leaf specialised to its operator."""
    if isinstance(cond, NotOf):
        inner = compile_truth(cond.item)

        def negation(facts: Mapping[str, Any]) -> Truth:
            value = inner(facts)
            return None if value is None else not value

        return negation
    if isinstance(cond, AllOf | AnyOf):
        tests = tuple(compile_truth(item) for item in cond.items)
        if len(tests) == 1:
            return tests[0]
        stop = isinstance(cond, AnyOf)  # the value that decides the group at once

        def group(facts: Mapping[str, Any]) -> Truth:
            unknown = False
            for test in tests:
                value = test(facts)
                if value is stop:
                    return stop
                if value is None:
                    unknown = True
            return None if unknown else not stop

        return group
    return _leaf_truth(cond)


def _negate(value: Truth) -> Truth:
    return None if value is None else not value


def _compile(node: Node, negated: bool) -> Explain:
    if isinstance(node, NotOf):
        return _compile(node.item, not negated)
    if isinstance(node, AllOf | AnyOf):
        combine = _and if isinstance(node, AllOf) != negated else _or
        kids = [(compile_truth(item), _compile(item, negated)) for item in node.items]

        def group(facts: Mapping[str, Any], out: list) -> Truth:
            truths = [_negate(test(facts)) if negated else test(facts) for test, _ in kids]
            value = combine(truths)
            if value is not True:
                for (_, explain), truth in zip(kids, truths, strict=True):
                    if truth is not True:
                        explain(facts, out)
            return value

        return group
    return _compile_leaf(node, negated)


def _compile_leaf(leaf: Leaf, negated: bool) -> Explain:
    name = FIELDS[leaf.field].name
    key = (leaf.field, leaf.op, _hashable(leaf.value), negated)

    def explain(facts: Mapping[str, Any], out: list) -> Truth:
        actual = facts.get(name)
        cache_key = (key, _hashable(actual))
        found = _explained.get(cache_key)
        if found is None:
            result = _leaf_result(leaf, facts, negated)
            blocking = None
            if result.status != "met":
                blocking = Blocking(result.field, result.label, result.text, result.status == "missing")
            found = (_TRUTH[result.status], blocking)
            if len(_explained) >= CACHE_LIMIT:
                _explained.clear()
            _explained[cache_key] = found
        if found[1] is not None:
            out.append(found[1])
        return found[0]

    return explain


@dataclass(frozen=True, slots=True)
class Compiled:
    """One condition tree, compiled: `truth(facts)` alone (fast), `explain(facts)` → (truth, 不足之处)."""

    truth: Callable[[Mapping[str, Any]], Truth]
    _explain: Explain

    def explain(self, facts: Mapping[str, Any]) -> tuple[Truth, tuple[Blocking, ...]]:
        out: list[Blocking] = []
        value = self._explain(facts, out)
        return value, tuple(out)


def compile_conditions(cond: Node) -> Compiled:
    """Compile a parsed condition tree once (the calculator keeps one per frozen version)."""
    return Compiled(compile_truth(cond), _compile(cond, False))
