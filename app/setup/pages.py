"""HTML for the setup and embedded pages: plain string templates, every value escaped.

The static guide lives in `templates/*.html` (`string.Template`, `$name` placeholders); the
parts that depend on a company are built here. Nothing dynamic reaches the page without
`html.escape`, and no script is served at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib import resources
from string import Template
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

from app.models import GateScope, GateState
from app.settings import Settings
from app.setup.state import CompanyState, GateView, RecentEvent

APP_NAME = "procore-hooks"

# A diagnosis in the words of the person who has to act on it.
_DIAGNOSES = {
    "not_installed": "The app is not installed in this company.",
    "no_project_access": "The app's user is not a member of this project.",
    "permission": "The app's user may not read this tool (permission template).",
    "credential_invalid": "Procore no longer accepts the app's login.",
    "no_credential": "No Procore login serves this company yet.",
    "pending": "Calls were refused; finding out which access is missing.",
    "unreachable": "Procore did not answer; checking again.",
    "operator": "Paused by the service operator.",
}

_STATUS_WORDS = {
    "done": "synced",
    "skipped": "skipped (not visible or gone)",
    "dead": "failed",
    "parked": "waiting for access",
    "queued": "waiting",
    "retrying": "retrying",
    "processing": "in progress",
    "ignored": "ignored (made by this app)",
    "unsupported": "not synced (unsupported)",
}


@cache
def _template(name: str) -> Template:
    text = resources.files("app.setup").joinpath("templates", name).read_text("utf-8")
    return Template(text)


@dataclass(frozen=True, slots=True)
class SignedLink:
    """The setup link's own parameters, echoed in the Connect form."""

    company: int
    expires: str
    sig: str
    # The form's CSRF token, also set as a cookie (double submit).
    csrf: str = ""


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def html_answer(
    body: str,
    status: int,
    *,
    frame_ancestors: str,
    settings: Settings,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Every page the service serves (setup, embedded, connect) with the same headers: no
    script at all, no Referer (signed URLs never leak), never cached, never sniffed."""
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
        # The Connect form redirects on to Procore's login: form-action covers redirects.
        f"form-action 'self' {origin_of(settings.procore_login_base)}; "
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
            **(headers or {}),
        },
    )


def page(title: str, body: str, *, narrow: bool = False) -> str:
    return _template("layout.html").substitute(
        title=escape(title), body=body, main_class="narrow" if narrow else ""
    )


def setup_page(
    *,
    setup_url: str,
    embedded_url: str,
    embed_field: str,
    state: CompanyState | None = None,
    note: str | None = None,
    link: SignedLink | None = None,
    embed_key: str | None = None,
    now: datetime | None = None,
) -> str:
    now = now or datetime.now(UTC)
    company = "" if state is None else company_section(state, link, embed_key, now)
    body = _template("setup.html").substitute(
        app_name=escape(APP_NAME),
        note=f'<p class="note">{escape(note)}</p>' if note else "",
        company=company,
        setup_url=escape(setup_url),
        embedded_url=escape(embedded_url),
        embed_field=escape(embed_field),
    )
    return page(f"Set up {APP_NAME} in Procore", body)


def headline(state: CompanyState) -> tuple[str, str]:
    """(css class, sentence) summing up the company's sync state."""
    if state.not_installed:
        return "blocked", "Paused: the app is not installed in this company."
    if state.gates_for(GateScope.CREDENTIAL):
        return "blocked", "Paused: Procore refused the app's login."
    if state.gates_for(GateScope.COMPANY):
        return "blocked", "Paused: the app cannot read this company's data."
    projects = state.gates_for(GateScope.PROJECT)
    if projects and state.project_id is not None:
        return "blocked", "Paused: the app cannot access this project."
    if projects:
        count = len(projects)
        noun = "project" if count == 1 else "projects"
        return "partial", f"Syncing, except {count} {noun} the app cannot access."
    if any(g.state is GateState.SUSPECT for g in state.gates):
        return "checking", "Syncing; some calls were refused and are being checked."
    if state.proved_at is None and not state.events_by_status:
        return "waiting", "Waiting for the first change from Procore."
    return "ok", "Syncing."


def installed_words(state: CompanyState, now: datetime) -> str:
    if state.not_installed:
        return "No: Procore answers that the app is not connected to this company."
    if state.proved_at is not None:
        return f"Yes: access confirmed {when(state.proved_at, now)}."
    return "Not confirmed yet: no call to Procore for this company has succeeded so far."


def company_section(
    state: CompanyState, link: SignedLink | None, embed_key: str | None, now: datetime
) -> str:
    css, sentence = headline(state)
    name = state.company_name or f"Company {state.company_id}"
    rows = [
        ("Installed", installed_words(state, now)),
        ("Waiting changes", f"{state.parked_events} held until access is fixed"),
        ("Last change received", _last_received(state, now)),
    ]
    projects = sorted(
        g.project_id for g in state.gates_for(GateScope.PROJECT) if g.project_id is not None
    )
    if projects:
        rows.insert(1, ("Projects without access", ", ".join(str(p) for p in projects)))
    parts = [
        f'<section class="card state {css}" id="company">',
        f"<h2>{escape(name)} <span class='muted'>(id {state.company_id})</span></h2>",
        f'<p class="headline">{escape(sentence)}</p>',
        _definitions(rows),
        *(gate_block(g, now) for g in state.parked),
        _counts(state),
    ]
    if link is not None:
        parts.append(_connect_form(link))
    if embed_key is not None:
        parts.append(
            "<p class='muted'>Embedded view: paste this key into the configuration's "
            f"configurable field: <code>{escape(embed_key)}</code></p>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def gate_block(gate: GateView, now: datetime) -> str:
    if gate.scope is GateScope.PROJECT:
        where = f"Project {gate.project_id}"
    elif gate.scope is GateScope.COMPANY:
        where = "Whole company"
    else:
        where = "The app's Procore login"
    why = _DIAGNOSES.get(gate.diagnosis or "", "Procore refused the app's calls.")
    if gate.parked_by == "operator":
        next_check = "paused by the service operator (no automatic checks)"
    elif gate.next_probe_at is not None:
        next_check = when(gate.next_probe_at, now)
    else:
        next_check = "soon"
    rows = [
        ("Since", "—" if gate.parked_at is None else when(gate.parked_at, now)),
        ("Next check", next_check),
        ("Waiting changes", str(gate.parked_events)),
    ]
    fix = gate.remediation or "Check the app's installation and project access (steps below)."
    return (
        '<div class="gate">'
        f"<h3>{escape(where)}: {escape(why)}</h3>"
        f'<p class="fix"><b>What to do:</b> {escape(fix)}</p>'
        f"{_definitions(rows)}</div>"
    )


def _kept(state: CompanyState) -> str:
    """The span the counts cover: finished changes are kept EVENTS_RETENTION_DAYS."""
    days = state.kept_days
    return f"in the last {days:g} day{'' if days == 1 else 's'}" if days else ""


def _last_received(state: CompanyState, now: datetime) -> str:
    if state.last_received_at is not None:
        return when(state.last_received_at, now)
    return f"none {_kept(state)}" if state.kept_days else "never"


def _counts(state: CompanyState) -> str:
    if not state.events_by_status:
        return ""
    cells = "".join(
        f"<tr><td>{escape(_STATUS_WORDS.get(status, status))}</td><td>{n}</td></tr>"
        for status, n in sorted(state.events_by_status.items(), key=lambda kv: -kv[1])
    )
    title = f"Changes received {_kept(state)}".strip()
    return f"<table><tr><th>{escape(title)}</th><th>Count</th></tr>{cells}</table>"


def _connect_form(link: SignedLink) -> str:
    return (
        '<form method="post" action="/setup/connect">'
        f'<input type="hidden" name="company" value="{link.company}">'
        f'<input type="hidden" name="expires" value="{escape(link.expires)}">'
        f'<input type="hidden" name="sig" value="{escape(link.sig)}">'
        f'<input type="hidden" name="csrf" value="{escape(link.csrf)}">'
        "<p><button type='submit'>Connect to Procore</button> "
        "<span class='muted'>only if your company connects with a Procore user login "
        "instead of the service account</span></p></form>"
    )


def _definitions(rows: list[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f"<dl>{items}</dl>"


def when(moment: datetime, now: datetime) -> str:
    """'in 4 min (10:24 UTC)', '3 h ago (2026-03-02 07:10 UTC)'."""
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span < 60:
        amount = f"{int(span)} s"
    elif span < 3600:
        amount = f"{int(span // 60)} min"
    elif span < 48 * 3600:
        amount = f"{int(span // 3600)} h"
    else:
        amount = f"{int(span // 86400)} days"
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"in {amount} ({stamp})" if seconds > 0 else f"{amount} ago ({stamp})"


# --- embedded -------------------------------------------------------------------------------


def embedded_page(state: CompanyState | None, *, note: str | None = None) -> str:
    if state is None:
        body = (
            f"<h1>{escape(APP_NAME)}</h1>"
            f'<p class="note">{escape(note or "This view needs a valid key.")}</p>'
            "<p class='muted'>Ask your company administrator to paste the key from the "
            "company's setup page into this app's configuration (Company Admin → App "
            "Management → Configurations).</p>"
        )
        return page(APP_NAME, body, narrow=True)
    now = datetime.now(UTC)
    css, sentence = headline(state)
    project = f"Project {state.project_id}" if state.project_id is not None else "Company"
    parts = [
        f"<h1>{escape(APP_NAME)} <span class='muted'>· {escape(project)}</span></h1>",
        f'<section class="card state {css}"><p class="headline">{escape(sentence)}</p>',
        *(gate_block(g, now) for g in state.parked),
        "</section>",
        _mirrored(state),
        _recent_events(state.recent_events, now),
    ]
    return page(f"{APP_NAME} sync state", "\n".join(parts), narrow=True)


def _mirrored(state: CompanyState) -> str:
    if not state.mirrored:
        return "<p class='muted'>Nothing synced for this project yet.</p>"
    cells = "".join(
        f"<tr><td>{escape(name)}</td><td>{n}</td></tr>" for name, n in state.mirrored.items()
    )
    return f"<h2>Synced items</h2><table><tr><th>Tool</th><th>Items</th></tr>{cells}</table>"


def _recent_events(events: list[RecentEvent], now: datetime) -> str:
    if not events:
        return ""
    cells = "".join(
        "<tr>"
        f"<td>{escape(when(e.received_at, now))}</td>"
        f"<td>{escape(e.resource_name or '?')} {e.resource_id or ''}</td>"
        f"<td>{escape(e.event_type or '')}</td>"
        f"<td>{escape(_STATUS_WORDS.get(e.status.value, e.status.value))}</td>"
        "</tr>"
        for e in events
    )
    return (
        "<h2>Latest changes</h2><table><tr><th>Received</th><th>Item</th><th>Change</th>"
        f"<th>State</th></tr>{cells}</table>"
    )
