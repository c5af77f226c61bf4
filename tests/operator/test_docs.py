"""`/docs` is served from the service's own files: it renders with no network beyond the api.

The rendering itself (headless Chromium listing every operation, with every other host
unreachable) is `scripts/docs_check.py`, run by `.ci/run`.
"""

from __future__ import annotations

import hashlib
import re

import httpx

from app import docs

_SOURCE = docs.ASSETS_DIR / "SOURCE"


def _urls(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)


async def test_docs_page_loads_only_assets_of_its_own_origin(client: httpx.AsyncClient) -> None:
    answer = await client.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    urls = _urls(answer.text)
    assert len(urls) == 3, urls  # the script, the style sheet and the icon
    for url in urls:
        assert url.startswith(f"{docs.ASSETS_PATH}/"), f"/docs loads {url} from elsewhere"
    assert "url: '/openapi.json'" in answer.text
    # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
    assert '"validatorUrl": null' in answer.text
    assert "cdn." not in answer.text


async def test_docs_assets_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    expected = {
        docs.SCRIPT: "text/javascript",
        docs.STYLE: "text/css",
        docs.ICON: "image/png",
    }
    for name, media_type in expected.items():
        answer = await client.get(f"{docs.ASSETS_PATH}/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(media_type), name
        assert answer.content == (docs.ASSETS_DIR / name).read_bytes()


async def test_docs_assets_refuse_paths_outside_their_directory(
    client: httpx.AsyncClient,
) -> None:
    for path in ("../__init__.py", "..%2F__init__.py", "%2e%2e/__init__.py", "missing.js"):
        answer = await client.get(f"{docs.ASSETS_PATH}/{path}")
        assert answer.status_code == 404, path
        assert b"swagger_ui_default_parameters" not in answer.content


async def test_redoc_has_no_offline_copy_and_is_not_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/redoc")).status_code == 404


def test_vendored_swagger_ui_matches_its_recorded_source() -> None:
    lines = [line for line in _SOURCE.read_text().splitlines() if not line.startswith("#")]
    assert lines[0].startswith("package swagger-ui-dist 5."), "Swagger UI 5 renders OpenAPI 3.1"
    assert lines[1].startswith("integrity sha512-")
    recorded: dict[str, str] = {}
    for line in lines[2:]:
        digest, name = line.split("  ", 1)
        recorded[name] = digest
    for name in (docs.SCRIPT, docs.STYLE, docs.ICON, "LICENSE", "NOTICE"):
        assert name in recorded, f"{name} is not recorded in SOURCE"
    for name, digest in recorded.items():
        actual = hashlib.sha256((docs.ASSETS_DIR / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} differs from the vendored swagger-ui-dist"
    vendored = {p.name for p in docs.ASSETS_DIR.iterdir()} - {"SOURCE"}
    assert vendored == set(recorded), "every vendored file is recorded, and only those"
