"""Realistic generated enterprises (企档) for benchmarks and demonstrations: Hubei districts, GB/T 4754
industries, 大中小微 by the 工信部 size rules, money in fen, qualification tags, credit status, valid USCCs.

Deterministic for a given seed. Bulk insert goes through Core `insert()` executemany in chunks, so 100,000
rows take seconds; a rich progress bar shows the way.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# (district code, city, district) with a weight: Yichang first (the demo's 420500), then Wuhan, then others.
DISTRICTS: list[tuple[str, str, str, int]] = [
    ("420502", "宜昌", "西陵区", 60),
    ("420503", "宜昌", "伍家岗区", 45),
    ("420504", "宜昌", "点军区", 15),
    ("420505", "宜昌", "猇亭区", 25),
    ("420506", "宜昌", "夷陵区", 50),
    ("420525", "宜昌", "远安县", 10),
    ("420526", "宜昌", "兴山县", 8),
    ("420527", "宜昌", "秭归县", 10),
    ("420528", "宜昌", "长阳土家族自治县", 10),
    ("420529", "宜昌", "五峰土家族自治县", 6),
    ("420581", "宜昌", "宜都市", 25),
    ("420582", "宜昌", "当阳市", 22),
    ("420583", "宜昌", "枝江市", 22),
    ("420102", "武汉", "江岸区", 30),
    ("420103", "武汉", "江汉区", 30),
    ("420104", "武汉", "硚口区", 20),
    ("420105", "武汉", "汉阳区", 20),
    ("420106", "武汉", "武昌区", 30),
    ("420107", "武汉", "青山区", 12),
    ("420111", "武汉", "洪山区", 35),
    ("420112", "武汉", "东西湖区", 25),
    ("420113", "武汉", "汉南区", 6),
    ("420114", "武汉", "蔡甸区", 12),
    ("420115", "武汉", "江夏区", 25),
    ("420116", "武汉", "黄陂区", 18),
    ("420117", "武汉", "新洲区", 12),
    ("420602", "襄阳", "襄城区", 12),
    ("420606", "襄阳", "樊城区", 18),
    ("420607", "襄阳", "襄州区", 12),
    ("420302", "十堰", "茅箭区", 10),
    ("420303", "十堰", "张湾区", 10),
    ("421002", "荆州", "沙市区", 12),
    ("421003", "荆州", "荆州区", 10),
    ("420202", "黄石", "黄石港区", 8),
    ("420902", "孝感", "孝南区", 10),
    ("420802", "荆门", "东宝区", 8),
    ("420704", "鄂州", "鄂城区", 8),
]
DISTRICT_NAMES: dict[str, str] = {code: f"{city}市{name}" for code, city, name, _ in DISTRICTS}

# GB/T 4754-2017 classes (门类字母 + 4 位小类), with a weight and whether the trade is technology-heavy.
INDUSTRIES: list[tuple[str, str, int, bool]] = [
    ("A0141", "蔬菜种植", 4, False),
    ("A0153", "柑橘类种植", 5, False),
    ("C1371", "蔬菜加工", 4, False),
    ("C1512", "白酒制造", 3, False),
    ("C1530", "精制茶加工", 4, False),
    ("C2622", "磷肥制造", 3, False),
    ("C2624", "复混肥料制造", 3, False),
    ("C2661", "化学试剂和助剂制造", 4, True),
    ("C2710", "化学药品原料药制造", 3, True),
    ("C2720", "化学药品制剂制造", 3, True),
    ("C2761", "生物药品制造", 2, True),
    ("C3011", "水泥制造", 2, False),
    ("C3484", "机械零部件加工", 6, False),
    ("C3670", "汽车零部件及配件制造", 5, True),
    ("C3841", "锂离子电池制造", 2, True),
    ("C3981", "电阻电容电感元件制造", 2, True),
    ("C3985", "电子专用材料制造", 2, True),
    ("D4413", "水力发电", 1, False),
    ("E4710", "住宅房屋建筑", 6, False),
    ("F5124", "食品、饮料及烟草制品批发", 8, False),
    ("F5211", "百货零售", 10, False),
    ("G5431", "普通货物道路运输", 6, False),
    ("H6110", "旅游饭店", 3, False),
    ("H6210", "正餐服务", 8, False),
    ("I6450", "互联网数据服务", 2, True),
    ("I6513", "应用软件开发", 5, True),
    ("I6531", "信息系统集成服务", 3, True),
    ("M7320", "工程和技术研究和试验发展", 2, True),
]

WORDS = ["长江", "三峡", "楚天", "峡州", "夷陵", "清江", "鄂西", "荆楚", "江城", "汉江", "九州", "华中", "东湖", "光谷"]
SUFFIXES = ["有限公司", "有限责任公司", "股份有限公司"]

# The archive's qualification tags (资质标签) as departments use them in conditions.
TAG_HIGH_TECH = "高新技术企业"
TAG_TECH_SME = "科技型中小企业"
TAG_SPECIALISED = "专精特新"
TAG_LITTLE_GIANT = "小巨人"
TAG_GAZELLE = "瞪羚企业"
TAG_ABOVE_SCALE = "规上企业"
TAGS = (TAG_HIGH_TECH, TAG_TECH_SME, TAG_SPECIALISED, TAG_LITTLE_GIANT, TAG_GAZELLE, TAG_ABOVE_SCALE)

YUAN = 100  # fen per yuan
WAN = 10_000 * YUAN  # fen per 万元


def size_class(employees: int, revenue_fen: int) -> str:
    """大中小微 by the 2011 工信部 rules for industry (从业人员 and 营业收入 both must reach the line)."""
    if employees >= 1000 and revenue_fen >= 40_000 * WAN:
        return "large"
    if employees >= 300 and revenue_fen >= 2_000 * WAN:
        return "medium"
    if employees >= 20 and revenue_fen >= 300 * WAN:
        return "small"
    return "micro"


def _weighted(rng: random.Random, items: list[Any], weight_index: int) -> Iterator[Any]:
    weights = [item[weight_index] for item in items]
    while True:
        yield from rng.choices(items, weights=weights, k=1024)


def generate_enterprises(n: int, *, seed: int = 2026, today: date = date(2026, 6, 30)) -> Iterator[dict[str, Any]]:
    """`n` enterprise rows (dicts for Core insert) with unique valid USCCs; ~3% lack some figures (NULL)."""
    from schemas import uscc as uscc_rules

    rng = random.Random(seed)
    districts = _weighted(rng, DISTRICTS, 3)
    industries = _weighted(rng, INDUSTRIES, 2)
    seen: set[str] = set()
    first_day = date(1995, 1, 1)
    span = (today - first_day).days
    for _ in range(n):
        code, city, _district, _ = next(districts)
        industry, trade, _, tech = next(industries)
        while (uscc := uscc_rules.generate(rng, code)) in seen:
            pass
        seen.add(uscc)
        # Younger firms are more numerous: registration dates lean towards recent years.
        registered_on = first_day + timedelta(days=int(span * rng.random() ** 0.6))
        employees = max(1, int(rng.lognormvariate(2.6, 1.45)))
        revenue_fen = int(employees * rng.lognormvariate(math.log(60 * WAN), 0.9))
        # small taxpayers under the exemption line and loss-making firms pay no tax for the year
        tax_paid_fen = 0 if rng.random() < 0.08 else int(revenue_fen * rng.uniform(0.005, 0.06))
        rd_ratio_bp = int(rng.lognormvariate(math.log(450 if tech else 80), 0.7))
        size = size_class(employees, revenue_fen)
        tags: list[str] = []
        if tech and rd_ratio_bp >= 300 and rng.random() < 0.3:
            tags.append(TAG_HIGH_TECH)
        if tech and size in ("small", "medium", "micro") and rng.random() < 0.3:
            tags.append(TAG_TECH_SME)
        if size in ("small", "medium") and rd_ratio_bp >= 300 and rng.random() < 0.25:
            tags.append(TAG_SPECIALISED)
            if rng.random() < 0.15:
                tags.append(TAG_LITTLE_GIANT)
        if TAG_HIGH_TECH in tags and registered_on >= date(2016, 1, 1) and rng.random() < 0.1:
            tags.append(TAG_GAZELLE)
        if industry.startswith(("B", "C", "D")) and revenue_fen >= 2_000 * WAN:
            tags.append(TAG_ABOVE_SCALE)
        credit = rng.random()
        row = {
            "uscc": uscc,
            "name": f"{city}{rng.choice(WORDS)}{trade}{rng.choice(SUFFIXES)}",
            # about 1 in 10 registered to a street (街道/乡镇, 9 digits), the rest to the district
            "region_code": code + f"{rng.randint(1, 12):03d}" if rng.random() < 0.1 else code,
            "industry_code": industry,
            "size_class": size,
            "registered_on": registered_on,
            "employees": employees,
            "revenue_fen": revenue_fen,
            "tax_paid_fen": tax_paid_fen,
            "rd_ratio_bp": rd_ratio_bp,
            "tags": tags,
            "credit_status": "good" if credit < 0.95 else ("warning" if credit < 0.99 else "dishonest"),
        }
        if rng.random() < 0.03:  # the archive is never complete
            row[rng.choice(["employees", "revenue_fen", "tax_paid_fen", "rd_ratio_bp", "registered_on"])] = None
        yield row


def insert_enterprises(
    *,
    session: Session,
    n: int,
    seed: int = 2026,
    chunk: int = 5000,
    progress: bool = True,
    console: Console | None = None,
) -> int:
    """Insert `n` generated enterprises in chunks (Core executemany); returns how many were inserted.

    USCCs already in the table are skipped, so a second run with another seed adds to an archive safely.
    """
    from db.repositories import enterprises

    existing = enterprises.usccs(session=session)
    inserted = 0
    columns = [TextColumn("生成企业"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console or Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("enterprises", total=n)
        batch: list[dict[str, Any]] = []
        for row in generate_enterprises(n, seed=seed):
            if row["uscc"] in existing:
                bar.advance(task)
                continue
            batch.append(row)
            if len(batch) >= chunk:
                inserted += enterprises.insert_many(session=session, rows=batch)
                bar.advance(task, len(batch))
                batch = []
        if batch:
            inserted += enterprises.insert_many(session=session, rows=batch)
            bar.advance(task, len(batch))
    return inserted


app = typer.Typer(help="Generated data for demonstrations and benchmarks", no_args_is_help=True)


@app.command("enterprises")
def enterprises_command(
    n: int = typer.Option(1000, "--n", min=1, help="how many enterprises"),
    seed: int = typer.Option(2026, help="random seed (same seed, same enterprises)"),
    database_url: str = typer.Option("", help="database URL (default: the configured ZHIDA_DATABASE_URL / data_dir)"),
) -> None:
    """Add N generated enterprises to the archive (skips USCCs already there)."""
    from db.migrate import upgrade
    from db.session import transaction
    from settings import get_settings

    url = database_url or get_settings().db_url
    upgrade(url)
    with transaction(url) as session:
        added = insert_enterprises(session=session, n=n, seed=seed)
    Console().print(f"已生成企业 {added} 家 / {added} enterprises added")
