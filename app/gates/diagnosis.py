"""Diagnosis and probes: which scope is at fault, found with as few cheap calls as possible.

A gate is parked first and diagnosed right after (its first probe runs at once), so no call
leaks to a scope while it is being diagnosed. Every later probe repeats the cheapest call that
tells whether the diagnosis still holds (FACTS.md §7):

| gate        | diagnosis          | probe call                                   |
|-------------|--------------------|----------------------------------------------|
| credential  | credential_invalid | GET /rest/v1.0/me                            |
| company     | not_installed      | GET /rest/v1.0/projects?company_id=X         |
| company     | permission         | the company-level call that was refused      |
| project     | no_project_access  | GET /rest/v1.0/projects/Y?company_id=X       |
| project     | permission         | the project, then the call that was refused  |
| tool        | tool_permission    | the call that was refused                    |
| project_tool| tool_disabled      | the call that was refused                    |

A first diagnosis (`pending`) walks down: a company-scoped call answering "not connected"
means not installed; a 401 asks `/me` whether the credential itself is dead; the project
call tells membership (the project refused) from a tool permission (the project answers,
the refused call still does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.gates.policy import Diagnosis
from app.models import GateScope
from app.procore import paths
from app.procore.answers import OutcomeKind
from app.procore.calls import CallRecord, Purpose
from app.procore.client import Answer, ProcoreClient
from app.procore.tokens import CredentialRef
from app.registry import resources

ME_PATH = paths.ME


def projects_path(company_id: int) -> str:
    # One project is enough to tell an installed company from one that is not.
    return paths.projects(company_id, per_page=1)


def project_path(company_id: int, project_id: int) -> str:
    return paths.project(company_id, project_id)


@dataclass(frozen=True, slots=True)
class GateTarget:
    """What a probe needs to know about the gate it probes."""

    scope: GateScope
    company_id: int | None
    project_id: int | None
    resource_name: str | None
    diagnosis: str | None
    # The call whose refusal parked the gate (re-asked to detect a permission fix).
    probe_path: str | None


@dataclass(frozen=True, slots=True)
class Finding:
    """Which scope is at fault (None: nothing is) and why, in the operator's words."""

    diagnosis: Diagnosis
    at_fault: GateScope | None
    status: int | None
    message: str

    @property
    def clear(self) -> bool:
        return self.diagnosis is Diagnosis.OK


def remediation(
    diagnosis: str,
    *,
    company_id: int | None,
    project_id: int | None,
    resource_name: str | None = None,
) -> str:
    company = f"company {company_id}" if company_id is not None else "the company"
    project = f"project {project_id}" if project_id is not None else "the project"
    tool = resource_name or "this tool"
    texts = {
        Diagnosis.PENDING: "checking which access is missing (a probe runs now)",
        Diagnosis.CREDENTIAL_INVALID: (
            "re-authenticate: Procore no longer accepts this credential. For the service "
            "account check PROCORE_CLIENT_ID / PROCORE_CLIENT_SECRET; for a connected user "
            "issue a new Connect-to-Procore link and have the user reconnect"
        ),
        Diagnosis.NO_CREDENTIAL: (
            f"no credential serves {company}: configure PROCORE_CLIENT_ID / "
            "PROCORE_CLIENT_SECRET (service account) or connect a user"
        ),
        Diagnosis.NOT_INSTALLED: (
            f"install the app in {company} (Company Admin → App Management, from the "
            "Marketplace or as a custom app), then add the service account to the projects "
            "to sync and assign a permission template. Work resumes by itself once a check "
            "succeeds; POST /admin/companies/"
            f"{company_id}/confirm-install checks at once"
        ),
        Diagnosis.NO_PROJECT_ACCESS: (
            f"add the service account (or the connected user) to {project} in {company} "
            "and assign a permission template; after an app update or reinstall this must be "
            "done again"
        ),
        Diagnosis.PERMISSION: (
            f"the app's user can see {project if project_id is not None else company} but "
            "may not read this tool: assign a permission template with read access to it, "
            "or enable the tool"
        ),
        Diagnosis.TOOL_PERMISSION: (
            f"the app's permission template in {company} does not grant {tool}: give the "
            "service account (or the connected user) read access to it (Company Admin → "
            "Permission Templates, or the app's manifest in the Developer Portal); other "
            "tools keep flowing"
        ),
        Diagnosis.TOOL_DISABLED: (
            f"{tool} is disabled or not readable in {project} of {company}: enable the tool "
            "in the project's settings or grant the app's user access to it there; the "
            "project's other tools keep flowing"
        ),
        Diagnosis.UPDATE_PENDING: (
            f"{project} left the app's permitted projects in {company} together with others "
            "(an app update or reinstall resets them): re-add it; the company's gate lists "
            "them all. It resumes by itself once it answers"
        ),
        Diagnosis.UNREACHABLE: "Procore did not answer usefully; the check is repeated",
        Diagnosis.OK: "nothing to do",
    }
    try:
        return texts[Diagnosis(diagnosis)]
    except ValueError:
        return diagnosis


def update_pending_remediation(company_id: int, project_ids: list[int]) -> str:
    """The company's incident: every project to re-add, in one text."""
    listed = ", ".join(str(p) for p in project_ids)
    return (
        f"re-add these {len(project_ids)} projects to the app's permitted projects in company "
        f"{company_id} (Company Admin → App Management → the app → Permitted Projects; an app "
        f"update or reinstall resets them, FACTS.md §3): {listed}. Each project resumes by "
        "itself once it answers; the company is not parked"
    )


async def probe(
    client: ProcoreClient,
    target: GateTarget,
    credential: CredentialRef | None,
    calls: list[CallRecord],
) -> Finding:
    """Run the probe (or first diagnosis) for one gate."""
    if credential is None:
        return Finding(Diagnosis.NO_CREDENTIAL, GateScope.COMPANY, None, "no credential")
    company_id = target.company_id
    purpose = Purpose.DIAGNOSE if target.diagnosis in (None, Diagnosis.PENDING) else Purpose.PROBE

    async def get(path: str) -> Answer:
        assert company_id is not None
        return await client.get(
            path,
            credential=credential,
            company_id=company_id,
            project_id=target.project_id,
            calls=calls,
            purpose=purpose,
        )

    first = purpose is Purpose.DIAGNOSE
    if target.scope is GateScope.CREDENTIAL or company_id is None:
        return await _check_credential(get)
    if target.scope is GateScope.PROJECT_TOOL and target.project_id is not None:
        return await _check_project_tool(get, target, company_id, target.project_id, first)
    if target.scope is GateScope.TOOL:
        return await _check_tool(get, target, company_id, first)
    if target.scope is GateScope.PROJECT and target.project_id is not None:
        return await _check_project(get, target, company_id, target.project_id)

    answer = await get(projects_path(company_id))
    found = await _company_level(get, answer)
    if found is not None:
        return found
    # The company answers: the app is installed there.
    if target.diagnosis == Diagnosis.PERMISSION:
        return await _check_refused_call(get, target, GateScope.COMPANY)
    return _finding(Diagnosis.OK, None, answer)


async def _company_level(get: Any, answer: Answer) -> Finding | None:
    """What a refused company-scoped call says; None when it was answered."""
    kind = answer.outcome.kind
    if kind is OutcomeKind.OK:
        return None
    if kind is OutcomeKind.NOT_INSTALLED:
        return _finding(Diagnosis.NOT_INSTALLED, GateScope.COMPANY, answer)
    if kind is OutcomeKind.UNAUTHORIZED:
        # 401 on a company-level call: a dead credential, or (per Procore's install guide)
        # an app that is not installed. `/me` tells them apart.
        me = await _check_credential(get)
        if me.diagnosis in (Diagnosis.CREDENTIAL_INVALID, Diagnosis.UNREACHABLE):
            return me
        return _finding(Diagnosis.NOT_INSTALLED, GateScope.COMPANY, answer)
    if kind is OutcomeKind.FORBIDDEN:
        return _finding(Diagnosis.PERMISSION, GateScope.COMPANY, answer)
    return _finding(Diagnosis.UNREACHABLE, None, answer)


async def _check_project(get: Any, target: GateTarget, company_id: int, project_id: int) -> Finding:
    """One call: the project itself. Not connected → company; refused → membership."""
    answer: Answer = await get(project_path(company_id, project_id))
    kind = answer.outcome.kind
    if kind in (OutcomeKind.FORBIDDEN, OutcomeKind.NOT_FOUND):
        # Procore answers 403, or 404 when the principal cannot see the project at all.
        return Finding(
            Diagnosis.NO_PROJECT_ACCESS,
            GateScope.PROJECT,
            answer.outcome.status,
            f"project {project_id} is not accessible to the app's user: {answer.outcome.message}",
        )
    found = await _company_level(get, answer)
    if found is not None:
        return found
    return await _check_refused_call(get, target, GateScope.PROJECT)


async def _check_project_tool(
    get: Any, target: GateTarget, company_id: int, project_id: int, first: bool
) -> Finding:
    """A tool refused in one project. Later probes ask the refused call alone."""
    if not first:
        return await _check_refused_call(
            get, target, GateScope.PROJECT_TOOL, Diagnosis.TOOL_DISABLED
        )
    project: Answer = await get(project_path(company_id, project_id))
    if project.outcome.kind in (OutcomeKind.FORBIDDEN, OutcomeKind.NOT_FOUND):
        return Finding(
            Diagnosis.NO_PROJECT_ACCESS,
            GateScope.PROJECT,
            project.outcome.status,
            f"project {project_id} is not accessible to the app's user: {project.outcome.message}",
        )
    found = await _company_level(get, project)
    if found is not None:
        return found
    refused = await _check_refused_call(
        get, target, GateScope.PROJECT_TOOL, Diagnosis.TOOL_DISABLED
    )
    if refused.diagnosis is not Diagnosis.TOOL_DISABLED:
        return refused
    elsewhere = await _tool_elsewhere(get, target, company_id, project_id)
    if elsewhere is not None and elsewhere.outcome.kind is OutcomeKind.FORBIDDEN:
        return _finding(Diagnosis.TOOL_PERMISSION, GateScope.TOOL, elsewhere)
    return refused


async def _tool_elsewhere(
    get: Any, target: GateTarget, company_id: int, project_id: int
) -> Answer | None:
    """The refused tool's list in another permitted project (None: there is none to ask)."""
    kind = resources.get(target.resource_name)
    if kind is None or not kind.lists:
        return None
    listed: Answer = await get(paths.projects(company_id, per_page=2))
    if listed.outcome.kind is not OutcomeKind.OK:
        return None
    try:
        others = [int(p["id"]) for p in listed.json() if int(p["id"]) != project_id]
    except (ValueError, TypeError, KeyError):
        return None
    if not others:
        return None
    path = resources.list_paths(kind, company_id=company_id, project_id=others[0])[0]
    answer: Answer = await get(f"{path}{'&' if '?' in path else '?'}per_page=1")
    return answer


async def _check_tool(get: Any, target: GateTarget, company_id: int, first: bool) -> Finding:
    """A tool refused company-wide. The first diagnosis checks the install first."""
    if first:
        found = await _company_level(get, await get(projects_path(company_id)))
        if found is not None:
            return found
    return await _check_refused_call(get, target, GateScope.TOOL, Diagnosis.TOOL_PERMISSION)


async def _check_credential(get: Any) -> Finding:
    answer: Answer = await get(ME_PATH)
    kind = answer.outcome.kind
    if kind is OutcomeKind.OK:
        return _finding(Diagnosis.OK, None, answer)
    if kind is OutcomeKind.UNAUTHORIZED:
        return _finding(Diagnosis.CREDENTIAL_INVALID, GateScope.CREDENTIAL, answer)
    if kind is OutcomeKind.NOT_INSTALLED:
        return _finding(Diagnosis.NOT_INSTALLED, GateScope.COMPANY, answer)
    return _finding(Diagnosis.UNREACHABLE, None, answer)


async def _check_refused_call(
    get: Any, target: GateTarget, scope: GateScope, refused: Diagnosis = Diagnosis.PERMISSION
) -> Finding:
    if not target.probe_path:
        return Finding(Diagnosis.OK, None, None, "scope reachable")
    answer: Answer = await get(target.probe_path)
    kind = answer.outcome.kind
    if kind in (OutcomeKind.OK, OutcomeKind.NOT_FOUND):
        # 404: the resource is gone, but the call itself is allowed again.
        return _finding(Diagnosis.OK, None, answer)
    if kind is OutcomeKind.FORBIDDEN:
        return _finding(refused, scope, answer)
    if kind is OutcomeKind.NOT_INSTALLED:
        return _finding(Diagnosis.NOT_INSTALLED, GateScope.COMPANY, answer)
    if kind is OutcomeKind.UNAUTHORIZED:
        return _finding(Diagnosis.CREDENTIAL_INVALID, GateScope.CREDENTIAL, answer)
    return _finding(Diagnosis.UNREACHABLE, None, answer)


def _finding(diagnosis: Diagnosis, at_fault: GateScope | None, answer: Answer) -> Finding:
    return Finding(diagnosis, at_fault, answer.outcome.status, answer.outcome.message)
