"""Generated records of the five datasets for a list of USCCs: plausible Yichang values that pass the archive's
validation (GB/T 2260 regions, GB/T 4754-2017 industries, yuan as decimal strings)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

REGIONS = ("420502", "420503", "420504", "420505", "420506", "420525", "420526", "420527", "420528", "420529")
INDUSTRIES = ("C3484", "C3511", "C2614", "C3971", "I6511", "M7320", "F5171", "C1361")
SIZES = ("medium", "small", "micro")
QUALIFICATIONS = ("高新技术企业", "科技型中小企业", "专精特新", "专精特新“小巨人”", "瞪羚企业")
CREDIT = ("good", "good", "good", "warning", "dishonest")


def _yuan(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high)}.{rng.randint(0, 99):02d}"


def record(dataset: str, uscc: str, rng: random.Random) -> dict[str, Any]:
    """One record of `dataset` for the enterprise (without `updated_at`: the platform stamps it)."""
    if dataset == "market_registration":
        return {
            "uscc": uscc,
            "region_code": rng.choice(REGIONS),
            "industry_code": rng.choice(INDUSTRIES),
            "size_class": rng.choice(SIZES),
            "registered_on": (date(2005, 1, 1) + timedelta(days=rng.randint(0, 7000))).isoformat(),
        }
    if dataset == "tax_annual":
        return {
            "uscc": uscc,
            "revenue_yuan": _yuan(rng, 500_000, 90_000_000),
            "tax_paid_yuan": _yuan(rng, 10_000, 3_000_000),
            "data_date": "2025-12-31",
        }
    if dataset == "social_insurance":
        return {"uscc": uscc, "employees": rng.randint(3, 800), "data_date": "2026-11-30"}
    if dataset == "tech_qualification":
        return {
            "uscc": uscc,
            "tags": sorted(rng.sample(QUALIFICATIONS, rng.randint(1, 2))),
            "rd_ratio_percent": f"{rng.randint(1, 15)}.{rng.randint(0, 99):02d}",
        }
    if dataset == "credit_status":
        return {"uscc": uscc, "credit_status": rng.choice(CREDIT)}
    raise KeyError(dataset)


DATASETS = ("market_registration", "tax_annual", "social_insurance", "tech_qualification", "credit_status")


def generate(usccs: list[str], *, seed: int = 18, datasets: tuple[str, ...] = DATASETS) -> dict[str, list[dict]]:
    """dataset → one record per USCC, the same for the same seed."""
    rng = random.Random(seed)
    return {name: [record(name, code, rng) for code in usccs] for name in datasets}
