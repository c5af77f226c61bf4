"""The Procore paths the service calls outside the resource registry (which holds every
resource type's show and list): probes, install discovery, the Webhooks API. One home, so a
path is spelled once (FACTS.md §4, §7, §9)."""

from __future__ import annotations

from urllib.parse import urlencode

# Who the token is (`RestV10MeGet`): the cheapest proof that a credential works.
ME = "/rest/v1.0/me"
# The companies where the app is installed, for a service account (`RestV10CompaniesGet`).
COMPANIES = "/rest/v1.0/companies"

HOOKS = "/rest/v1.0/webhooks/hooks"
WEBHOOK_RESOURCES = "/rest/v1.0/webhooks/resources"
_V2_HOOKS = "/rest/v2.0/companies/{company_id}/webhooks/hooks"


def projects(company_id: int, **query: object) -> str:
    """The company's projects the principal may see (`RestV10ProjectsGet`): active ones
    unless `filters[by_status]` says otherwise."""
    return f"/rest/v1.0/projects?{urlencode({'company_id': company_id, **query})}"


def project(company_id: int, project_id: int) -> str:
    """One project (`RestV10ProjectsIdGet`): 404/403 tell a project the principal cannot see."""
    return f"/rest/v1.0/projects/{project_id}?{urlencode({'company_id': company_id})}"


def hook(hook_id: int) -> str:
    return f"{HOOKS}/{hook_id}"


def triggers(hook_id: int) -> str:
    return f"{HOOKS}/{hook_id}/triggers"


def deliveries(hook_id: int) -> str:
    return f"{HOOKS}/{hook_id}/deliveries"


def v2_hooks(company_id: int) -> str:
    """The v2.0 Webhooks API's hooks (`RestV20CompaniesCompanyIdWebhooksHooksGet`): the only
    one that shows and changes a hook's `status`."""
    return _V2_HOOKS.format(company_id=company_id)
