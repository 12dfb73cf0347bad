"""The data sources of the enterprise archive (企档) as configuration: which fields each source owns, how its files
look and how often it is refreshed.

Every archive field has exactly one owner. A source's import may change only the fields it owns, and an edit that
names another source (or an administrator's manual edit of a source-owned field) is refused, so a value on a case
can always be traced to the one source that said it. The code lists the rows are checked against (GB/T 2260 region
codes, GB/T 4754-2017 industry sections) are data files in schemas/codes/.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from schemas.fields import FIELDS, FieldType
from schemas.vocabulary import ArchiveSource

FORMATS = ("csv", "xlsx", "json")


class Parse:
    """How a file column becomes a stored value (schemas/archive_rows.py applies it)."""

    TEXT = "text"
    REGION = "region"  # GB/T 2260 code from the code list
    INDUSTRY = "industry"  # GB/T 4754-2017: section letter + division (+ group, class)
    DATE = "date"  # YYYY-MM-DD (also YYYY/MM/DD, YYYYMMDD)
    INT = "int"
    YUAN = "yuan"  # yuan with at most two decimals → integer fen
    PERCENT = "percent"  # percent with at most two decimals → basis points
    ENUM = "enum"  # one of the field's choices, by value or Chinese label
    TAGS = "tags"  # a list of the source's allowed tags, separated by ; ； 、 or ,


@dataclass(frozen=True)
class Column:
    """One column of a source's file: its English key, Chinese header (either may head the column), the field it
    fills and how it is parsed. Required columns must be present in the file and non-empty in every row."""

    key: str
    header: str
    field: str
    parse: str
    required: bool = True


@dataclass(frozen=True)
class Source:
    """One data source: the department that sends it, its refresh cadence, its file columns and allowed tags."""

    id: ArchiveSource
    provider: str  # who sends it (shown on pages)
    cadence: str  # daily | monthly | yearly
    cadence_label: str
    columns: tuple[Column, ...]
    tags: tuple[str, ...] = ()  # the qualification list's enumeration
    formats: tuple[str, ...] = FORMATS
    # The department that sends the source: besides administrators, only it may import the source (docs/archive.md).
    department_code: str = ""
    # The dataset of the data-sharing platform (政务数据共享交换平台) that serves this source: pulled on a Temporal
    # Schedule at the cadence above (docs/datashare-protocol.md); "" = files only.
    dataset: str = ""

    @property
    def label(self) -> str:
        return self.id.label

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns)

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id.value,
            "label": self.label,
            "provider": self.provider,
            "cadence": self.cadence,
            "cadence_label": self.cadence_label,
            "formats": list(self.formats),
            "fields": [{"field": c.field, "label": FIELDS[c.field].label} for c in self.columns],
            "columns": [
                {"key": c.key, "header": c.header, "parse": c.parse, "required": c.required}
                for c in (USCC_COLUMN, *self.columns, DATE_COLUMN)
            ],
            "tags": list(self.tags),
            "department_code": self.department_code,
            "dataset": self.dataset,
        }


USCC_COLUMN = Column("uscc", "统一社会信用代码", "", Parse.TEXT)
# Optional in every file: the day the source's value holds from (source date); default the import's source date.
DATE_COLUMN = Column("data_date", "数据日期", "", Parse.DATE, required=False)

QUALIFICATIONS = ("高新技术企业", "科技型中小企业", "专精特新", "专精特新“小巨人”", "瞪羚企业")

SOURCES: dict[ArchiveSource, Source] = {
    s.id: s
    for s in (
        Source(
            ArchiveSource.MARKET,
            "宜昌市市场监督管理局",
            "daily",
            "每日",
            (
                Column("region_code", "注册地行政区划代码", "region_code", Parse.REGION),
                Column("industry_code", "行业代码", "industry_code", Parse.INDUSTRY),
                Column("size_class", "企业规模", "size_class", Parse.ENUM),
                Column("registered_on", "成立日期", "registered_on", Parse.DATE),
            ),
            department_code="YC-SCJGJ",
            dataset="market_registration",
        ),
        Source(
            ArchiveSource.TAX,
            "国家税务总局宜昌市税务局",
            "yearly",
            "每年（汇算清缴后）",
            (
                Column("revenue_yuan", "营业收入（元）", "revenue_fen", Parse.YUAN),
                Column("tax_paid_yuan", "纳税额（元）", "tax_paid_fen", Parse.YUAN),
            ),
            department_code="YC-SWJ",
            dataset="tax_annual",
        ),
        Source(
            ArchiveSource.SOCIAL,
            "宜昌市人力资源和社会保障局",
            "monthly",
            "每月",
            (Column("employees", "参保人数", "employees", Parse.INT),),
            department_code="YC-RSJ",
            dataset="social_insurance",
        ),
        Source(
            ArchiveSource.TECH,
            "宜昌市科学技术局",
            "yearly",
            "每年（认定公布后）",
            (
                Column("tags", "资质", "tags", Parse.TAGS),
                Column("rd_ratio_percent", "研发投入占比（%）", "rd_ratio_bp", Parse.PERCENT, required=False),
            ),
            tags=QUALIFICATIONS,
            department_code="YC-KJJ",
            dataset="tech_qualification",
        ),
        Source(
            ArchiveSource.CREDIT,
            "宜昌市发展和改革委员会（信用宜昌）",
            "daily",
            "每日",
            (Column("credit_status", "信用状态", "credit_status", Parse.ENUM),),
            department_code="YC-FGW",
            dataset="credit_status",
        ),
    )
}

# The one owner of each archive field; fields no source declares are the administrators' (manual edits).
OWNER: dict[str, ArchiveSource] = {c.field: s.id for s in SOURCES.values() for c in s.columns}
OWNER["rule_tags"] = ArchiveSource.TAG_RULES  # computed from the tag rules, never imported or edited


def owner_of(field: str) -> ArchiveSource:
    return OWNER.get(field, ArchiveSource.MANUAL)


def source(name: str) -> Source:
    """The source called `name`; ValueError (in Chinese, listing the sources) otherwise."""
    try:
        return SOURCES[ArchiveSource(name)]
    except (ValueError, KeyError):
        known = "、".join(f"{s.id.value}（{s.label}）" for s in SOURCES.values())
        raise ValueError(f"数据来源 {name!r} 不存在；可用：{known}") from None


def foreign_fields(fields: list[str] | tuple[str, ...], by: str) -> dict[str, ArchiveSource]:
    """The fields among `fields` that `by` does not own, with their owners: an edit naming any of them is refused."""
    return {f: owner_of(f) for f in fields if owner_of(f) != by}


def _check_config() -> None:
    """A field has one owner, and every column fills a known field of the right type."""
    seen: dict[str, ArchiveSource] = {}
    for s in SOURCES.values():
        for c in s.columns:
            if c.field in seen:
                raise AssertionError(f"字段 {c.field} 同时属于 {seen[c.field]} 和 {s.id}")
            if c.field not in FIELDS:
                raise AssertionError(f"数据来源 {s.id} 的列 {c.key} 指向未知字段 {c.field}")
            seen[c.field] = s.id
            if c.parse == Parse.TAGS and FIELDS[c.field].type is not FieldType.TAGS:
                raise AssertionError(f"列 {c.key} 不是标签字段")


_check_config()


@cache
def region_codes() -> dict[str, str]:
    """GB/T 2260 administrative division codes the platform serves (code → name), from schemas/codes/."""
    return {row["code"]: row["name"] for row in _code_list("gb2260_hubei.csv")}


@cache
def industry_sections() -> dict[str, tuple[int, int, str]]:
    """GB/T 4754-2017 sections (门类): letter → (first division, last division, name)."""
    return {
        r["section"]: (int(r["first_division"]), int(r["last_division"]), r["name"])
        for r in _code_list("gb4754_2017_sections.csv")
    }


def _code_list(name: str) -> list[dict[str, str]]:
    """The rows of a code list shipped with the package (schemas/codes/NAME)."""
    text = resources.files("schemas").joinpath("codes", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))
