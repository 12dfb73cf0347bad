"""The fault rules in force and how they fire: per voucher exactly, or by rate, reproducibly."""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Sequence

from standins.treasury.contracts import FaultRule, FaultSettings


class Faults:
    """The fault rules in force (in memory: a restart clears them), thread-safe.

    Voucher rules are exact; rate rules draw per voucher from a hash of (seed, kind, voucher), so the same
    instruction always draws the same way, and per request from a seeded generator.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._remaining: dict[int, int] = {}
        self._rng = random.Random(0)
        self.injected: Counter[str] = Counter()  # kind → how many times it fired, so tests can prove it did

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def replace(self, settings: FaultSettings) -> None:
        """Put a new set of rules in force and reset the counters."""
        with self._lock:
            self._settings = settings
            self._remaining = {
                i: rule.Times or (1 if rule.VoucherNo else 2**62) for i, rule in enumerate(settings.Rules)
            }
            self._rng = random.Random(settings.Seed)
            self.injected.clear()

    def request_rules(self) -> bool:
        """Whether a timeout or 5xx rule is still in force (else no request needs its vouchers read for one)."""
        return any(
            rule.Kind in ("timeout", "error_5xx") and self._remaining.get(index, 0) > 0
            for index, rule in enumerate(self._settings.Rules)
        )

    def request_fault(self, vouchers: Sequence[str]) -> FaultRule | None:
        """A timeout or 5xx to inject into this request, if any rule hits it (counted down per rule)."""
        with self._lock:
            for index, rule in enumerate(self._settings.Rules):
                if rule.Kind not in ("timeout", "error_5xx") or self._remaining.get(index, 0) <= 0:
                    continue
                if rule.VoucherNo is not None:
                    hit = rule.VoucherNo in vouchers
                else:
                    hit = bool(vouchers) and self._rng.random() < (rule.Rate or 0)
                if hit:
                    self._remaining[index] -= 1
                    self.injected[rule.Kind] += 1
                    return rule
        return None

    def for_voucher(self, kind: str, voucher_no: str) -> FaultRule | None:
        """The rule of `kind` that applies to this voucher: its own rule first, else a rate rule's draw."""
        rules = self._settings.Rules
        found = next((r for r in rules if r.Kind == kind and r.VoucherNo == voucher_no), None) or next(
            (
                r
                for r in rules
                if r.Kind == kind and r.Rate is not None and _draw(self._settings.Seed, kind, voucher_no) < r.Rate
            ),
            None,
        )
        if found is not None:
            with self._lock:
                self.injected[kind] += 1
        return found

    def statement_rule(self, kind: str, voucher_no: str) -> FaultRule | None:
        """The statement fault (drop or amount) set for exactly this voucher, if any."""
        return next((r for r in self._settings.Rules if r.Kind == kind and r.VoucherNo == voucher_no), None)


def _draw(seed: int, kind: str, voucher_no: str) -> float:
    digest = hashlib.sha256(f"{seed}:{kind}:{voucher_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
