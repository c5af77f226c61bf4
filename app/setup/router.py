"""`GET /setup` (the app's Instructions URL), `POST /setup/connect`, `GET /embedded`.

Public: the installation guide. Through a signed link only: a company's live state. Pages
carry no script; their policy forbids any, and the signed URLs never leak as a Referer.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.connect.service import issue_connect_link
from app.logs import get_logger
from app.runtime import Runtime, runtime_of
from app.settings import Settings
from app.setup import links, pages
from app.setup.state import CompanyState, company_state

log = get_logger(__name__)

router = APIRouter(tags=["setup"])

_EMBEDDED_FRAME_ANCESTORS = "'self' https://*.procore.com"
_FORM_BYTES = 4096

_NOTES = {
    links.LinkCheck.INVALID: "This link is not valid, so your company's status is not shown.",
    links.LinkCheck.EXPIRED: (
        "This link has expired, so your company's status is not shown: ask for a new one."
    ),
}


def _runtime(request: Request) -> Runtime:
    return runtime_of(request)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _html(body: str, status: int, *, frame_ancestors: str, settings: Settings) -> HTMLResponse:
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
        # The Connect form redirects on to Procore's login: form-action covers redirects.
        f"form-action 'self' {_origin(settings.procore_login_base)}; "
        f"frame-ancestors {frame_ancestors}"
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Content-Security-Policy": policy,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _guide(
    settings: Settings,
    *,
    note: str | None = None,
    state: CompanyState | None = None,
    link: pages.SignedLink | None = None,
    key: str | None = None,
) -> str:
    return pages.setup_page(
        setup_url=settings.public_base_url.rstrip("/") + links.SETUP_PATH,
        embedded_url=links.embedded_url_template(settings),
        embed_field=links.EMBED_FIELD,
        state=state,
        note=note,
        link=link,
        embed_key=key,
    )


@router.get(
    links.SETUP_PATH,
    summary="Setup page (the app's Instructions URL); a signed link adds the company's state",
    response_class=HTMLResponse,
    responses={403: {"description": "Invalid or expired signature: the public page only"}},
)
async def setup(request: Request, company: str = "", expires: str = "", sig: str = "") -> Response:
    runtime = _runtime(request)
    settings = runtime.settings
    checked = links.verify_setup(settings, company, expires, sig)
    if not isinstance(checked, int):
        note = _NOTES.get(checked)
        status = 200 if checked == links.LinkCheck.MISSING else 403
        return _html(
            _guide(settings, note=note), status, frame_ancestors="'none'", settings=settings
        )
    async with runtime.sessions() as session:
        state = await company_state(session, checked)
    body = _guide(
        settings,
        state=state,
        link=pages.SignedLink(checked, expires, sig),
        key=links.embed_key(settings, checked),
    )
    return _html(body, 200, frame_ancestors="'none'", settings=settings)


@router.post(links.SETUP_PATH + "/connect", include_in_schema=False)
async def connect(request: Request) -> Response:
    """The Connect button: a fresh single-use connect link for the signed company."""
    runtime = _runtime(request)
    settings = runtime.settings
    raw = await request.body()
    form = parse_qs(raw[:_FORM_BYTES].decode("utf-8", "replace"))
    company, expires, sig = (form.get(k, [""])[0] for k in ("company", "expires", "sig"))
    checked = links.verify_setup(settings, company, expires, sig)
    if not isinstance(checked, int):
        note = _NOTES.get(checked, "This link is not valid.")
        return _html(_guide(settings, note=note), 403, frame_ancestors="'none'", settings=settings)
    async with runtime.sessions() as session, session.begin():
        url = await issue_connect_link(session, settings, checked, issued_by=f"setup:{checked}")
    log.info("setup.connect_link_issued", company_id=checked)
    answer = RedirectResponse(url, status_code=303)
    answer.headers["Referrer-Policy"] = "no-referrer"
    answer.headers["Cache-Control"] = "no-store"
    return answer


@router.get(
    links.EMBEDDED_PATH,
    summary="Sync state of one project, for Procore's side panel or full-screen iframe",
    response_class=HTMLResponse,
    responses={403: {"description": "Missing or wrong key: no company data shown"}},
)
async def embedded(
    request: Request, company_id: str = "", project_id: str = "", key: str = ""
) -> Response:
    runtime = _runtime(request)
    settings = runtime.settings
    company = links.verify_embed(settings, company_id, key)
    if company is None:
        body = pages.embedded_page(None, note="This view needs the key of your company.")
        return _html(body, 403, frame_ancestors=_EMBEDDED_FRAME_ANCESTORS, settings=settings)
    project = int(project_id) if project_id.isascii() and project_id.isdigit() else None
    async with runtime.sessions() as session:
        state = await company_state(session, company, project_id=project, recent=10)
    return _html(
        pages.embedded_page(state),
        200,
        frame_ancestors=_EMBEDDED_FRAME_ANCESTORS,
        settings=settings,
    )
