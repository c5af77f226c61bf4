"""The api's documentation page, `/docs`: Swagger UI served from the service's own files.

FastAPI's default page loads Swagger UI from a CDN and renders blank without one (an operator's
network, an air-gapped cluster). Here the page, its script, its style sheet and its icon all
come from this process: `app/docs/swagger-ui/` holds the files of the official npm
distribution (`swagger-ui-dist`, version and checksums in its SOURCE file, refreshed by
`scripts/vendor-swagger-ui.sh`), and the page asks nothing of any other host (no validator
badge either).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
ASSETS_DIR = Path(__file__).resolve().parent / "swagger-ui"
# The files the page loads; SOURCE names where every vendored file comes from.
SCRIPT, STYLE, ICON = "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"

# No validator badge: Swagger UI would send the schema to validator.swagger.io.
PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def page(app: FastAPI) -> HTMLResponse:
    assert app.openapi_url is not None
    return get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - API",
        swagger_js_url=f"{ASSETS_PATH}/{SCRIPT}",
        swagger_css_url=f"{ASSETS_PATH}/{STYLE}",
        swagger_favicon_url=f"{ASSETS_PATH}/{ICON}",
        swagger_ui_parameters=PARAMETERS,
    )


def install(app: FastAPI) -> None:
    """Serve `/docs` and its assets. The app is built with `docs_url=None, redoc_url=None`
    (ReDoc, the other default page, has no local copy here)."""

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return page(app)

    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
