"""Code lists of budget indicators (指标): 功能分类, 政府/部门经济分类, 资金性质, 预算级次 — kept as data files
beside this module, each stating its source (see README.md); loaded once, read-only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from types import MappingProxyType

LISTS = ("exp_func", "gov_eco", "dep_eco", "fund_type", "budget_level")


@dataclass(frozen=True)
class CodeList:
    key: str
    name: str
    source: str
    codes: MappingProxyType

    def name_of(self, code: str) -> str | None:
        return self.codes.get(code)


@cache
def code_list(key: str) -> CodeList:
    """One list by its file name (exp_func, gov_eco, dep_eco, fund_type, budget_level)."""
    if key not in LISTS:
        raise KeyError(key)
    # Package data read once, like a constant: the lists ship with the code (pyproject package-data).
    data = json.loads(files(__name__).joinpath(f"{key}.json").read_text(encoding="utf-8"))
    return CodeList(key=key, name=data["name"], source=data["source"], codes=MappingProxyType(dict(data["codes"])))
