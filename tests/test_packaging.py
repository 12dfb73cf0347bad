"""The installed distribution holds every package of the tree (an installed `zhida` outside the checkout needs them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_the_tree_is_distributed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    shipped = set(find_packages(str(ROOT), include=config["packages"]["find"]["include"]))
    tree = {str(p.parent.relative_to(ROOT)).replace("/", ".") for p in ROOT.glob("*/**/__init__.py")}
    tree = {p for p in tree if not p.startswith(("tests", ".venv", "data", "reports", "build"))}
    assert tree - shipped == set()
