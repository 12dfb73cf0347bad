"""Every page asset is served from the package: the API docs and the pages work on an offline network."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from settings import Settings

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "templates"
EXTERNAL = re.compile(r"""(src|href)=["']?(https?:)?//""")


def test_api_docs_load_the_vendored_swagger_ui(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path)))
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert "/static/vendor/swagger-ui-bundle-5.35.0.js" in assets and "/static/vendor/swagger-ui-5.35.0.css" in assets
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 100, asset


def test_vendored_scripts_are_served(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path)))
    for name in ("htmx-2.0.11.min.js", "echarts-5.6.0.min.js"):
        r = client.get(f"/static/vendor/{name}")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], name


def test_no_template_loads_anything_from_another_host() -> None:
    found = [f"{t.name}: {m.group(0)}" for t in TEMPLATES.rglob("*.html") for m in EXTERNAL.finditer(t.read_text())]
    assert found == []


def test_every_form_that_posts_carries_the_csrf_token() -> None:
    """The CSRF check refuses a page POST without its token, so every form must render one."""
    missing = []
    for template in TEMPLATES.rglob("*.html"):
        for form in re.findall(r"<form\b[^>]*>.{0,40}", template.read_text(), re.I | re.S):
            if re.search(r'method="post"', form, re.I) and "csrf_field()" not in form:
                missing.append(f"{template.name}: {form[:80]}")
    assert missing == []


def test_pages_link_no_json_api_the_cookie_cannot_open() -> None:
    """The JSON API takes only a bearer token, so a link on a page to /api/v1/… would answer 401 to the signed-in user."""
    links = [f"{t.name}: {m}" for t in TEMPLATES.rglob("*.html") for m in re.findall(r'href="(/api/v1[^"]*)"', t.read_text())]
    assert links == []
