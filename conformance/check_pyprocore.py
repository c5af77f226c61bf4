"""pyprocore (PyPI `pyprocore`, pinned in requirements/pyprocore.txt; Python >= 3.12), used
unchanged against a Procore-compatible server: the procore-hooks simulator, or Procore itself.

    BASE_URL=http://127.0.0.1:8001 CLIENT_ID=sim-client CLIENT_SECRET=sim-secret \
    COMPANY_ID=31 PROJECT_ID=900 SIM_CONTROL=1 build/pyprocore/bin/python check_pyprocore.py

Optional: LOGIN_URL (default BASE_URL), RFI_ID, SUBMITTAL_ID, OBSERVATION_ID, PUNCH_ITEM_ID,
COMPANY_USER_ID (default: the first listed), SIM_CONTROL=1 (expire tokens through the
simulator's control API), FLOW_TIMEOUT_S, VERBOSE=1.

The SDK is configured only through its documented environment variables (PROCORE_*), as a
client-credentials (service account) client. It sends `Procore-Company-Id` only for documents,
directory, observations and punch items, never for companies, projects, RFIs and submittals,
which Procore's docs require (`tutorials/tutorial_mpz.md`): run.sh sets the simulator's
`company_header` switch to "inferred" for it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

# flows.py sits beside this file, and a script's own directory is on sys.path.
from flows import Flows, Server, check

server = Server.from_env()
# pyprocore reads only these variables (pyprocore/core/config.py), once per process: set them
# before the import. Tokens go to a fresh temporary store, so no earlier token is reused.
_store_dir = tempfile.mkdtemp(prefix="pyprocore-tokens-")
os.environ.update(
    {
        "PROCORE_CLIENT_ID": server.client_id,
        "PROCORE_CLIENT_SECRET": server.client_secret,
        "PROCORE_LOGIN_URL": server.login_url,
        "PROCORE_API_BASE": server.base_url,
        "PROCORE_COMPANY_ID": str(server.company_id),
        "PROCORE_AUTH_MODE": "client_credentials",
        "PROCORE_TOKEN_STORE_BACKEND": "file",
        "PROCORE_TOKEN_STORE_PATH": os.path.join(_store_dir, "token_store.json"),
    }
)
os.environ.pop("PROCORE_REDIRECT_URI", None)
# pyprocore reads ./.env and writes ./logs/ relative to the working directory: keep both in
# the temporary directory.
os.chdir(_store_dir)
flows = Flows("pyprocore")
if not flows.verbose:  # the SDK logs every request, and every error with a traceback
    logging.disable(logging.CRITICAL)

from pyprocore import Procore  # noqa: E402
from pyprocore.auth.oauth import OAuthClient  # noqa: E402
from pyprocore.core.config import get_settings  # noqa: E402
from pyprocore.core.exceptions import ProcoreAPIError  # noqa: E402

found = flows.found
client = Procore()
COMPANY_ID, PROJECT_ID = server.company_id, server.project_id

OBSERVATION_TYPE = (
    "pyprocore's Observation model types `type` as a string, but Procore returns the "
    "observation type as an object {id, name, category, ...} (OpenAPI RestV10ObservationsItemsGet)"
)
RFIS_V11 = (
    "pyprocore lists and shows RFIs at /rest/v1.1/projects/{project_id}/rfis[/{id}], which "
    "Procore's REST reference does not list (RFIs are v1.0: RestV10ProjectsProjectIdRfisGet, "
    "RestV10ProjectsProjectIdRfisIdGet)"
)


def first_id(items: list[Any], env_name: str) -> int | None:
    if os.environ.get(env_name):
        return int(os.environ[env_name])
    return items[0].id if items else None


@flows.flow("oauth.client_credentials (POST {LOGIN_URL}/oauth/token, form-encoded)")
def _token() -> str:
    token = OAuthClient(settings=get_settings()).request_client_credentials_token()
    check(bool(token.access_token.get_secret_value()), "empty access_token")
    return f"token_type={token.token_type} expires_in={token.expires_in}"


@flows.flow("companies.list (GET /rest/v1.0/companies)")
def _companies() -> str:
    ids = [c.id for c in client.companies.list()]
    check(COMPANY_ID in ids, f"COMPANY_ID {COMPANY_ID} not in {ids}")
    return f"{len(ids)} companies"


@flows.flow("projects.list (GET /rest/v1.0/companies/{company_id}/projects)")
def _projects() -> str:
    ids = [p.id for p in client.projects.list(company_id=COMPANY_ID)]
    check(PROJECT_ID in ids, f"PROJECT_ID {PROJECT_ID} not in {ids}")
    return f"{len(ids)} projects"


@flows.flow("projects.get (lists the company's projects and picks one)")
def _project() -> str:
    project = client.projects.get(PROJECT_ID)
    check(project.id == PROJECT_ID, f"got project {project.id}")
    return f"name={project.name!r}"


@flows.flow(
    "rfis.list (GET /rest/v1.1/projects/{project_id}/rfis)",
    sdk_defect=RFIS_V11,
    provides=("rfi_id", "rfi_count"),
)
def _rfis() -> str:
    rfis = client.rfis.list(PROJECT_ID)
    found["rfi_id"] = first_id(rfis, "RFI_ID")
    found["rfi_count"] = len(rfis)
    check(found["rfi_id"] is not None, "no RFI in the project (set RFI_ID or seed one)")
    return f"{len(rfis)} RFIs"


@flows.flow("rfis.list paginated (per_page=1: follows Link rel=next)", needs=("rfi_count",))
def _rfis_paged() -> str:
    rfis = client.rfis.list(PROJECT_ID, params={"per_page": 1})
    check(len(rfis) == found["rfi_count"], f"{len(rfis)} RFIs paged vs {found['rfi_count']}")
    return f"{len(rfis)} RFIs over {len(rfis)} pages"


@flows.flow("rfis.get (GET /rest/v1.1/projects/{project_id}/rfis/{id})", needs=("rfi_id",))
def _rfi() -> str:
    rfi = client.rfis.get(PROJECT_ID, found["rfi_id"])
    check(rfi.id == found["rfi_id"], f"got RFI {rfi.id}")
    return f"subject={rfi.subject!r}"


@flows.flow("submittals.list (GET /rest/v1.1/projects/{project_id}/submittals)")
def _submittals() -> str:
    submittals = client.submittals.list(PROJECT_ID)
    found["submittal_id"] = first_id(submittals, "SUBMITTAL_ID")
    check(found["submittal_id"] is not None, "no submittal in the project")
    return f"{len(submittals)} submittals"


@flows.flow(
    "submittals.get (GET /rest/v1.1/projects/{project_id}/submittals/{id})",
    needs=("submittal_id",),
)
def _submittal() -> str:
    submittal = client.submittals.get(PROJECT_ID, found["submittal_id"])
    check(submittal.id == found["submittal_id"], f"got submittal {submittal.id}")
    return f"title={submittal.title!r}"


@flows.flow(
    "observations.list (GET /rest/v1.0/observations/items?project_id=)",
    sdk_defect=OBSERVATION_TYPE,
    provides=("observation_id",),
)
def _observations() -> str:
    items = client.observations.list(COMPANY_ID, PROJECT_ID)
    found["observation_id"] = first_id(items, "OBSERVATION_ID")
    check(found["observation_id"] is not None, "no observation item in the project")
    return f"{len(items)} observation items"


@flows.flow(
    "observations.get (GET /rest/v1.0/observations/items/{id}?project_id=)",
    needs=("observation_id",),
)
def _observation() -> str:
    item = client.observations.get(COMPANY_ID, PROJECT_ID, found["observation_id"])
    check(item.id == found["observation_id"], f"got observation {item.id}")
    return ""


@flows.flow("punch_items.list (GET /rest/v1.0/punch_items?project_id=)")
def _punch_items() -> str:
    items = client.punch_items.list(COMPANY_ID, PROJECT_ID)
    found["punch_item_id"] = first_id(items, "PUNCH_ITEM_ID")
    check(found["punch_item_id"] is not None, "no punch item in the project")
    return f"{len(items)} punch items"


@flows.flow(
    "punch_items.get (GET /rest/v1.0/punch_items/{id}?project_id=)", needs=("punch_item_id",)
)
def _punch_item() -> str:
    item = client.punch_items.get(COMPANY_ID, PROJECT_ID, found["punch_item_id"])
    check(item.id == found["punch_item_id"], f"got punch item {item.id}")
    return ""


@flows.flow("company_users.list (GET /rest/v1.0/companies/{company_id}/users)")
def _company_users() -> str:
    users = client.company_users.list(COMPANY_ID)
    found["company_user_id"] = first_id(users, "COMPANY_USER_ID")
    check(found["company_user_id"] is not None, "no company user")
    return f"{len(users)} users"


@flows.flow(
    "company_users.get (GET /rest/v1.0/companies/{company_id}/users/{id})",
    needs=("company_user_id",),
)
def _company_user() -> str:
    user = client.company_users.get(found["company_user_id"], COMPANY_ID)
    check(user.id == found["company_user_id"], f"got user {user.id}")
    return ""


@flows.flow("project_users.list (GET /rest/v1.0/projects/{project_id}/users)")
def _project_users() -> str:
    return f"{len(client.project_users.list(PROJECT_ID, COMPANY_ID))} users"


@flows.flow("vendors.list (GET /rest/v1.0/vendors?company_id=)")
def _vendors() -> str:
    return f"{len(client.vendors.list(COMPANY_ID))} vendors"


@flows.flow("documents.list_folders (GET /rest/v1.0/folders?project_id=)")
def _folders() -> str:
    return f"{len(client.documents.list_folders(PROJECT_ID, company_id=COMPANY_ID))} folders"


@flows.flow("documents.list (GET /rest/v1.0/folders?project_id=, files part)")
def _documents() -> str:
    return f"{len(client.documents.list(PROJECT_ID, company_id=COMPANY_ID))} files"


@flows.flow(
    "errors: unknown punch item answers 404 -> ResourceNotFoundError", needs=("punch_item_id",)
)
def _not_found() -> str:
    try:
        client.punch_items.get(COMPANY_ID, PROJECT_ID, 987654321)
    except ProcoreAPIError as exc:
        check(exc.status_code == 404, f"status {exc.status_code}, expected 404")
        return type(exc).__name__
    raise AssertionError("no error for an unknown punch item")


@flows.flow(
    "token expiry: 401 -> the SDK requests a new client_credentials token and retries",
    needs=("company_user_id",),
)
def _expiry() -> str:
    if not server.sim_control:
        users = client.company_users.list(COMPANY_ID)
        return f"SIM_CONTROL!=1: no forced expiry, plain call only ({len(users)} users)"
    expired = server.expire_tokens()
    users = client.company_users.list(COMPANY_ID)
    check(bool(users), "no users after a new token")
    return f"expired={expired}; recovered ({len(users)} users)"


flows.finish()
