"""`GET /setup` (the app's Instructions URL), `POST /setup/connect`, `GET /embedded`.

Public: the installation guide. Through a signed link only: a company's live state. Pages
carry no script; their policy forbids any, and the signed URLs never leak as a Referer.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.connect.service import TooManyLinks, issue_connect_link
from app.fields import id_from_text
from app.logs import get_logger
from app.runtime import Runtime, runtime_of
from app.settings import Settings
from app.setup import links, pages
from app.setup.state import CompanyState, company_state

log = get_logger(__name__)

router = APIRouter(tags=["setup"])

_EMBEDDED_FRAME_ANCESTORS = "'self' https://*.procore.com"
_FORM_BYTES = 4096
# Double-submit CSRF token of the Connect form: a cookie only this site's pages can set, and
# the same value in the form.
CSRF_COOKIE = "procore_hooks_setup_csrf"
_CSRF_MAX_AGE = 3600

_NOTES = {
    links.LinkCheck.INVALID: "This link is not valid, so your company's status is not shown.",
    links.LinkCheck.EXPIRED: (
        "This link has expired, so your company's status is not shown: ask for a new one."
    ),
}


def _runtime(request: Request) -> Runtime:
    return runtime_of(request)


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
        return pages.html_answer(
            _guide(settings, note=note), status, frame_ancestors="'none'", settings=settings
        )
    async with runtime.sessions() as session:
        state = await company_state(session, checked, kept_days=settings.events_retention_days)
    csrf = secrets.token_urlsafe(24)
    body = _guide(
        settings,
        state=state,
        link=pages.SignedLink(checked, expires, sig, csrf),
        key=links.embed_key(settings, checked),
    )
    answer = pages.html_answer(body, 200, frame_ancestors="'none'", settings=settings)
    answer.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=_CSRF_MAX_AGE,
        path=links.SETUP_PATH,
        httponly=True,
        secure=settings.public_base_url.startswith("https://"),
        samesite="strict",
    )
    return answer


def _same_origin(request: Request, settings: Settings) -> bool:
    """A cross-site form post is refused: browsers send Origin on every POST (and
    Sec-Fetch-Site); when present, they must name this service."""
    origin = request.headers.get("origin")
    if origin is not None and origin != pages.origin_of(settings.public_base_url):
        return False
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def _csrf_ok(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie and submitted) and secrets.compare_digest(
        cookie.encode(), submitted.encode()
    )


@router.post(links.SETUP_PATH + "/connect", include_in_schema=False)
async def connect(request: Request) -> Response:
    """The Connect button: a fresh single-use connect link for the signed company."""
    runtime = _runtime(request)
    settings = runtime.settings
    raw = await request.body()
    form = parse_qs(raw[:_FORM_BYTES].decode("utf-8", "replace"))
    company, expires, sig, csrf = (
        form.get(k, [""])[0] for k in ("company", "expires", "sig", "csrf")
    )
    if not (_same_origin(request, settings) and _csrf_ok(request, csrf)):
        note = "This form was not sent from your setup page: open your setup link and retry."
        return pages.html_answer(
            _guide(settings, note=note), 403, frame_ancestors="'none'", settings=settings
        )
    checked = links.verify_setup(settings, company, expires, sig)
    if not isinstance(checked, int):
        note = _NOTES.get(checked, "This link is not valid.")
        return pages.html_answer(
            _guide(settings, note=note), 403, frame_ancestors="'none'", settings=settings
        )
    try:
        async with runtime.sessions() as session, session.begin():
            url = await issue_connect_link(session, settings, checked, issued_by=f"setup:{checked}")
    except TooManyLinks:
        note = "Too many connect links were asked for in the last hour: retry later."
        return pages.html_answer(
            _guide(settings, note=note), 429, frame_ancestors="'none'", settings=settings
        )
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
        return pages.html_answer(
            body, 403, frame_ancestors=_EMBEDDED_FRAME_ANCESTORS, settings=settings
        )
    project = id_from_text(project_id)
    async with runtime.sessions() as session:
        state = await company_state(
            session,
            company,
            project_id=project,
            recent=10,
            kept_days=settings.events_retention_days,
        )
    return pages.html_answer(
        pages.embedded_page(state),
        200,
        frame_ancestors=_EMBEDDED_FRAME_ANCESTORS,
        settings=settings,
    )
