"""Names of the administrative divisions (行政区划, GB/T 2260) the platform serves, so pages show 西陵区, never 420502.

The names come from the one code list kept as data (schemas/codes/gb2260_hubei.csv), which archive imports also
validate region codes against.
"""

from __future__ import annotations

from schemas.archive_sources import industry_sections, region_codes


def region_name(code: str | None) -> str:
    """The division's name; an unlisted code is named by the nearest listed division above it."""
    if not code:
        return "未登记地区"
    names = region_codes()
    code = code[:6]
    if code in names:
        return names[code]
    for parent in (code[:4] + "00", code[:2] + "0000"):
        if parent in names:
            return f"{names[parent]}其他地区"
    return "其他地区"


def industry_name(code: str | None) -> str:
    """The GB/T 4754-2017 section (门类) an industry code belongs to, by name: C3511 → 制造业."""
    if not code:
        return "未登记行业"
    section = industry_sections().get(code[:1].upper())
    return section[2] if section else "其他行业"


def region_area_name(prefix: str) -> str:
    """The division a code prefix stands for in a condition ("以 4205 开头" is 宜昌市): the prefix padded to six
    digits, else the nearest listed division above it."""
    names = region_codes()
    return names.get(prefix[:6].ljust(6, "0")) or region_name(prefix)


_INDUSTRY_LEVELS = {3: "大类", 4: "中类", 5: "小类"}


def industry_label(code: str) -> str:
    """An industry code as people read it in a condition: C → 制造业, C39 → 制造业 C39 大类 (only the sections are
    kept by name, so a finer code keeps its number with its level)."""
    section = industry_name(code)
    level = _INDUSTRY_LEVELS.get(len(code))
    return f"{section} {code.upper()} {level}" if level else section
