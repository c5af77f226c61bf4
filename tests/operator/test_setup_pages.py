"""GET /setup (public guide; a company's live state only through a signed link), the Connect
button, and GET /embedded (for Procore's iframe)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.connect.service import link_is_live
from app.models import CompanyCredential, Credential, CredentialKind, EventStatus, GateScope
from app.runtime import Runtime
from app.settings import Settings
from app.setup import links
from tests.conftest import make_settings
from tests.factories import add_events, add_gate, add_resources

REMEDIATION = "install the app in company 31 (Company Admin → App Management)"
PROJECT_FIX = "add the service account to project 902 and assign a permission template"


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def parked_company(db: Runtime) -> None:
    """Company 31: not installed (parked), one project without access, events waiting."""
    gate = await add_gate(db, remediation=REMEDIATION)
    project = await add_gate(
        db,
        scope=GateScope.PROJECT,
        project_id=902,
        diagnosis="no_project_access",
        remediation=PROJECT_FIX,
    )
    await add_events(db, 4, status=EventStatus.PARKED, gate_id=gate.id)
    await add_events(db, 1, status=EventStatus.PARKED, gate_id=project.id, project_id=902)
    await add_events(db, 2, status=EventStatus.DONE)
    # Another company, whose data must never show on 31's page.
    await add_gate(db, company_id=32, remediation="SECRET-OF-COMPANY-32")


def assert_public_only(html: str) -> None:
    assert "Install Custom App" in html
    assert 'id="company"' not in html
    for private in (REMEDIATION, PROJECT_FIX, "SECRET-OF-COMPANY-32", "Waiting changes"):
        assert private not in html


async def test_public_page_is_the_install_guide(client: httpx.AsyncClient, db: Runtime) -> None:
    await parked_company(db)
    response = await client.get("/setup")
    assert response.status_code == 200
    html = response.text
    assert_public_only(html)
    for step in (
        "Company Admin → App Management",
        "Installed Apps",
        "Configurations",
        "Create Configuration",
        "configurable fields",
        "permission template",
        "New projects are not added automatically",
        "app update or a reinstall",
        "member of every project",
        "App not visible in a project?",
        "401 Unauthorized",
        "403 Forbidden",
    ):
        assert step in html, step
    assert "<script" not in html
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_bare_company_id_shows_nothing(client: httpx.AsyncClient, db: Runtime) -> None:
    await parked_company(db)
    for query in ("company=31", "company_id=31", "company=31&expires=9999999999"):
        response = await client.get(f"/setup?{query}")
        assert_public_only(response.text)


async def test_signed_link_shows_the_parked_company_and_its_remediation(
    client: httpx.AsyncClient, db: Runtime, settings: Settings
) -> None:
    await parked_company(db)
    async with db.sessions() as session, session.begin():
        credential = Credential(kind=CredentialKind.CLIENT_CREDENTIALS, label="app", client_id="x")
        session.add(credential)
        await session.flush()
        session.add(
            CompanyCredential(
                company_id=31, credential_id=credential.id, company_name="Acme <Builders>"
            )
        )
    link = links.setup_link(settings, 31)
    response = await client.get(path_of(link.url))
    assert response.status_code == 200
    html = response.text
    assert 'id="company"' in html
    assert "Acme &lt;Builders&gt;" in html  # escaped
    assert "Paused: the app is not installed in this company." in html
    assert "No: Procore answers that the app is not connected to this company." in html
    assert REMEDIATION in html
    assert "Projects without access</dt><dd>902</dd>" in html
    assert PROJECT_FIX in html
    assert "<dt>Waiting changes</dt><dd>5 held until access is fixed</dd>" in html
    assert "<dt>Next check</dt><dd>in 3 min" in html or "<dt>Next check</dt><dd>in 4 min" in html
    assert "SECRET-OF-COMPANY-32" not in html
    assert "Connect to Procore</button>" in html
    assert links.embed_key(settings, 31) in html
    assert "<script" not in html
    assert response.headers["cache-control"] == "no-store"


async def test_a_healthy_company_reads_syncing(
    client: httpx.AsyncClient, db: Runtime, settings: Settings
) -> None:
    await add_events(db, 3, status=EventStatus.DONE)
    html = (await client.get(path_of(links.setup_link(settings, 31).url))).text
    assert "Syncing." in html
    assert "What to do" not in html
    # Finished changes are kept EVENTS_RETENTION_DAYS: the counts say what they cover.
    assert "<th>Changes received in the last 30 days</th>" in html


def test_the_page_says_what_span_its_counts_cover() -> None:
    """With a retention, a company quiet for longer reads "none in the last N days", not
    "never"; with every event kept (0), "never" is the truth."""
    from app.setup import pages
    from app.setup.state import CompanyState

    now = datetime.now(UTC)

    def section(kept_days: float, last: datetime | None) -> str:
        state = CompanyState(
            company_id=31,
            company_name=None,
            proved_at=now,
            gates=[],
            events_by_status={"done": 2} if last else {},
            last_received_at=last,
            kept_days=kept_days,
        )
        return pages.company_section(state, None, None, now)

    assert "<dt>Last change received</dt><dd>none in the last 30 days</dd>" in section(30, None)
    assert "<dt>Last change received</dt><dd>none in the last 1 day</dd>" in section(1, None)
    assert "<dt>Last change received</dt><dd>never</dd>" in section(0, None)
    kept = section(0, now - timedelta(hours=2))
    assert "<th>Changes received</th>" in kept
    assert "<dt>Last change received</dt><dd>never</dd>" not in kept


@pytest.mark.parametrize("tamper", ["company", "expires", "sig"])
async def test_a_tampered_link_is_403_with_the_public_page(
    client: httpx.AsyncClient, db: Runtime, settings: Settings, tamper: str
) -> None:
    await parked_company(db)
    query = parse_qs(urlsplit(links.setup_link(settings, 31).url).query)
    params = {k: v[0] for k, v in query.items()}
    params[tamper] = {"company": "32", "expires": "9999999999", "sig": "A" * 43}[tamper]
    response = await client.get("/setup", params=params)
    assert response.status_code == 403
    assert "This link is not valid" in response.text
    assert_public_only(response.text)


async def test_an_expired_link_is_403_with_the_public_page(
    client: httpx.AsyncClient, db: Runtime, settings: Settings
) -> None:
    await parked_company(db)
    old = links.setup_link(settings, 31, now=time.time() - settings.setup_link_ttl_seconds - 5)
    response = await client.get(path_of(old.url))
    assert response.status_code == 403
    assert "This link has expired" in response.text
    assert_public_only(response.text)


async def test_links_survive_key_rotation_until_the_old_key_is_dropped(
    settings: Settings,
) -> None:
    signing = make_settings(settings.database_url, setup_link_keys="old", embed_keys="old")
    link = links.setup_link(signing, 31)
    query = {k: v[0] for k, v in parse_qs(urlsplit(link.url).query).items()}
    rotated = make_settings(settings.database_url, setup_link_keys="new,old", embed_keys="new,old")
    dropped = make_settings(settings.database_url, setup_link_keys="new", embed_keys="new")
    settings = signing
    args = (query["company"], query["expires"], query["sig"])
    assert links.verify_setup(rotated, *args) == 31
    assert links.verify_setup(dropped, *args) == links.LinkCheck.INVALID
    key = links.embed_key(settings, 31)
    assert links.verify_embed(rotated, "31", key) == 31
    assert links.verify_embed(dropped, "31", key) is None
    assert links.embed_key(rotated, 31) != key  # new links use the newest key


async def test_connect_button_issues_a_connect_link_for_the_company(
    client: httpx.AsyncClient, db: Runtime, settings: Settings
) -> None:
    signed = links.setup_link(settings, 31).url
    query = parse_qs(urlsplit(signed).query)
    page = await client.get(f"/setup?{urlsplit(signed).query}")  # sets the CSRF cookie
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {**{k: v[0] for k, v in query.items()}, "csrf": csrf.group(1)}
    response = await client.post("/setup/connect", data=form)
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert target.path == "/connect/procore"
    state = parse_qs(target.query)["state"][0]
    async with db.sessions() as session:
        assert await link_is_live(session, state)

    refused = await client.post("/setup/connect", data={**form, "company": "32"})
    assert refused.status_code == 403
    assert "location" not in refused.headers


async def test_embedded_needs_the_company_key_and_may_be_framed_by_procore(
    client: httpx.AsyncClient, db: Runtime, settings: Settings
) -> None:
    await parked_company(db)
    for params in (
        {"company_id": "31", "project_id": "902"},
        {"company_id": "31", "project_id": "902", "key": links.embed_key(settings, 32)},
        {"company_id": "31", "project_id": "902", "key": "{{procore_hooks_key}}"},
    ):
        denied = await client.get("/embedded", params=params)
        assert denied.status_code == 403
        assert REMEDIATION not in denied.text
        assert PROJECT_FIX not in denied.text

    key = links.embed_key(settings, 31)
    response = await client.get(
        "/embedded", params={"company_id": "31", "project_id": "902", "key": key}
    )
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://*.procore.com" in policy
    assert "x-frame-options" not in response.headers
    html = response.text
    assert "Project 902" in html
    assert REMEDIATION in html  # the company gate blocks this project too
    assert PROJECT_FIX in html
    assert "SECRET-OF-COMPANY-32" not in html
    assert "<script" not in html


async def test_embedded_shows_the_projects_latest_changes_and_mirror(
    client: httpx.AsyncClient, db: Runtime, settings: Settings
) -> None:
    await add_events(db, 2, status=EventStatus.DONE, project_id=900, resource_name="Submittals")
    await add_events(db, 1, status=EventStatus.DONE, project_id=901)
    await add_resources(
        db,
        [
            {"resource_id": 1},
            {"resource_id": 2},
            {"resource_id": 3, "resource_name": "Submittals"},
            {"resource_id": 4, "deleted_at": datetime.now(UTC) - timedelta(hours=1)},
            {"resource_id": 5, "project_id": 901},
        ],
    )
    key = links.embed_key(settings, 31)
    html = (
        await client.get("/embedded", params={"company_id": "31", "project_id": "900", "key": key})
    ).text
    assert "Syncing." in html
    assert "<tr><td>RFIs</td><td>2</td></tr>" in html
    assert "<tr><td>Submittals</td><td>1</td></tr>" in html
    assert html.count("<td>Submittals 5150</td>") == 2
    assert "RFIs 5150" not in html  # project 901's event


async def test_developer_portal_urls_are_on_the_page(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    html = (await client.get("/setup")).text
    assert "http://127.0.0.1:8000/setup" in html
    template = links.embedded_url_template(settings)
    assert "{{procore.company.id}}" in template
    assert "{{procore.project.id}}" in template
    assert "key={{procore_hooks_key}}" in template
    assert template.replace("&", "&amp;") in html
