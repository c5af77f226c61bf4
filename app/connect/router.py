"""`GET /connect/procore` (start, from an issued link) and `/connect/procore/callback`."""

from __future__ import annotations

import html
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.connect import service
from app.runtime import runtime_of

router = APIRouter(tags=["connect"])

# Binds the flow to the browser that opened the issued link (login CSRF protection).
STATE_COOKIE = "procore_hooks_connect"
_COOKIE_MAX_AGE = 15 * 60


def _page(status: int, title: str, detail: str) -> HTMLResponse:
    body = (
        "<!doctype html><meta charset=utf-8><title>procore-hooks</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get(service.CONNECT_PATH, include_in_schema=False)
async def start(request: Request, state: str = "") -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        live = bool(state) and await service.link_is_live(session, state)
    if not live:
        return _page(400, "Link not valid", "This connect link is unknown, used or expired.")
    answer = RedirectResponse(service.authorize_url(runtime.settings, state), status_code=302)
    answer.set_cookie(
        STATE_COOKIE,
        state,
        max_age=_COOKIE_MAX_AGE,
        path=service.CONNECT_PATH,
        httponly=True,
        secure=runtime.settings.public_base_url.startswith("https://"),
        samesite="lax",
    )
    answer.headers["Cache-Control"] = "no-store"
    return answer


@router.get(service.CALLBACK_PATH, include_in_schema=False)
async def callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    runtime = runtime_of(request)
    bound = request.cookies.get(STATE_COOKIE, "")
    if not state or not bound or not secrets.compare_digest(state.encode(), bound.encode()):
        return _page(
            400, "Connect not started here", "Open the connect link you were given, then retry."
        )
    if error:
        return _page(400, "Not connected", f"Procore answered: {error}. The link can be reused.")
    if not code:
        return _page(400, "Not connected", "Procore sent no authorization code.")
    result = await service.complete(runtime, state=state, code=code)
    if isinstance(result, service.ConnectFailed):
        answer: Response = _page(result.status, "Not connected", result.reason)
    else:
        names = ", ".join(name or str(cid) for cid, name in result.companies) or "none"
        detail = f"Connected as {result.login or 'a Procore user'}. Companies reached: {names}."
        if result.missing_company is not None:
            detail += (
                f" This login does not reach company {result.missing_company}: connect with a"
                " user of that company."
            )
        answer = _page(200, "Connected to Procore", detail)
    answer.delete_cookie(STATE_COOKIE, path=service.CONNECT_PATH)
    return answer
