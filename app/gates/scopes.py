"""Which gate holds a piece of work: the one definition, in Python and in SQL.

Work is named by what Procore's answers depend on: the credential that calls, the company,
the project (if any) and the resource type (the Procore "tool"). Every scope that contains
the work can hold it, and they nest (a parent holds its children):

    credential ⊃ company ⊃ project
                 company ⊃ tool (company, resource type) ⊃ project tool
                           project ⊃ project tool (company, project, resource type)

`keys(work)` lists the gate keys of those scopes, broadest first; `holding_gate_sql` is the
same list as a SQL subquery over column expressions, for the statements that decide in SQL
(the receiver's insert, the resync and hooks hand-offs) — and `verdict` runs that very
subquery too, so the workers, the receiver and the hand-offs cannot disagree. When several
parked gates hold the work, the broadest is the one named (its release lets the work meet
the next one).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models import GateScope

# Broadest first: the order in which gates hold work (and in which `keys` lists them).
ORDER: tuple[GateScope, ...] = (
    GateScope.CREDENTIAL,
    GateScope.COMPANY,
    GateScope.TOOL,
    GateScope.PROJECT,
    GateScope.PROJECT_TOOL,
)


@dataclass(frozen=True, slots=True)
class Work:
    """What a call (or a piece of parked work) is about."""

    company_id: int
    project_id: int | None = None
    resource_name: str | None = None
    credential_id: int | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """One gate's scope: the fields its key is made of (the others None)."""

    scope: GateScope
    company_id: int | None
    project_id: int | None = None
    resource_name: str | None = None
    credential_id: int | None = None

    @property
    def key(self) -> str:
        return scope_key(self)


def scope_key(scope: Scope) -> str:
    if scope.scope is GateScope.CREDENTIAL:
        return f"credential:{scope.credential_id}"
    if scope.scope is GateScope.COMPANY:
        return f"company:{scope.company_id}"
    if scope.scope is GateScope.TOOL:
        return f"tool:{scope.company_id}:{scope.resource_name}"
    if scope.scope is GateScope.PROJECT:
        return f"project:{scope.company_id}:{scope.project_id}"
    return f"project_tool:{scope.company_id}:{scope.project_id}:{scope.resource_name}"


def credential_key(credential_id: int) -> str:
    return scope_key(Scope(GateScope.CREDENTIAL, None, credential_id=credential_id))


def company_key(company_id: int) -> str:
    return scope_key(Scope(GateScope.COMPANY, company_id))


def project_key(company_id: int, project_id: int) -> str:
    return scope_key(Scope(GateScope.PROJECT, company_id, project_id))


def scopes(work: Work) -> list[Scope]:
    """Every scope that holds `work`, broadest first."""
    found: list[Scope] = []
    if work.credential_id is not None:
        found.append(Scope(GateScope.CREDENTIAL, work.company_id, credential_id=work.credential_id))
    company, project, resource = work.company_id, work.project_id, work.resource_name
    found.append(Scope(GateScope.COMPANY, company))
    if resource is not None:
        found.append(Scope(GateScope.TOOL, company, resource_name=resource))
    if project is not None:
        found.append(Scope(GateScope.PROJECT, company, project))
        if resource is not None:
            found.append(Scope(GateScope.PROJECT_TOOL, company, project, resource))
    return found


def parent(scope: Scope, at_fault: GateScope, credential_id: int | None) -> Scope | None:
    """The scope containing `scope` that a diagnosis found at fault (None: not a parent)."""
    if at_fault is GateScope.CREDENTIAL:
        if credential_id is None:
            return None
        return Scope(GateScope.CREDENTIAL, scope.company_id, credential_id=credential_id)
    if scope.company_id is None:
        return None
    if at_fault is GateScope.COMPANY:
        return Scope(GateScope.COMPANY, scope.company_id)
    if at_fault is GateScope.TOOL and scope.resource_name is not None:
        return Scope(GateScope.TOOL, scope.company_id, resource_name=scope.resource_name)
    if at_fault is GateScope.PROJECT and scope.project_id is not None:
        return Scope(GateScope.PROJECT, scope.company_id, scope.project_id)
    return None


def keys(work: Work) -> list[str]:
    return [s.key for s in scopes(work)]


def keys_sql(*, credential: str, company: str, project: str, resource: str) -> str:
    """`keys(work)` as a SQL `text[]` over column expressions (NULL parts drop out)."""
    parts = {
        GateScope.CREDENTIAL: f"'credential:' || {credential}",
        GateScope.COMPANY: f"'company:' || {company}",
        GateScope.TOOL: f"'tool:' || {company} || ':' || {resource}",
        GateScope.PROJECT: f"'project:' || {company} || ':' || {project}",
        GateScope.PROJECT_TOOL: (
            f"'project_tool:' || {company} || ':' || {project} || ':' || {resource}"
        ),
    }
    return "array_remove(ARRAY[" + ", ".join(parts[s] for s in ORDER) + "]::text[], NULL)"


def holding_gate_sql(
    *, credential: str = "NULL", company: str, project: str = "NULL", resource: str = "NULL"
) -> str:
    """A subquery naming the parked gate that holds the work (id, reason), or no row.

    Used as `LEFT JOIN LATERAL (<this>) AS g ON true`, or `NOT EXISTS (<this>)`.
    """
    keys_array = keys_sql(
        credential=f"CAST({credential} AS bigint)",
        company=f"CAST({company} AS bigint)",
        project=f"CAST({project} AS bigint)",
        resource=f"CAST({resource} AS text)",
    )
    # Column expressions of the calling statement, never input.
    return f"""
        SELECT id, concat(diagnosis, ': ', remediation) AS reason FROM gates
        WHERE state = 'parked' AND scope_key = ANY({keys_array})
        ORDER BY array_position({keys_array}, scope_key)
        LIMIT 1
    """  # noqa: S608
