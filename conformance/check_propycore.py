"""ProPyCore (PyPI `ProPyCore`, pinned in requirements/propycore.txt), used unchanged against a
Procore-compatible server: the procore-hooks simulator, or Procore itself.

    BASE_URL=http://127.0.0.1:8001 CLIENT_ID=sim-client CLIENT_SECRET=sim-secret \
    COMPANY_ID=31 PROJECT_ID=900 SIM_CONTROL=1 build/propycore/bin/python check_propycore.py

Optional: LOGIN_URL (passed as `oauth_url`, which ProPyCore stores and never uses: its token
request always goes to `{base_url}/oauth/token`), REDIRECT_URI (default
urn:ietf:wg:oauth:2.0:oob, as ProPyCore's README says for data connection apps), RFI_ID,
SUBMITTAL_ID, PUNCH_ITEM_ID, COMPANY_USER_ID (default: the first listed), SIM_CONTROL=1
(expire tokens through the simulator's control API), FLOW_TIMEOUT_S, VERBOSE=1.

The SDK is configured only through its constructor, a client-credentials client (HTTP Basic
on the token request). It sends `Procore-Company-Id` on every call but `companies.get()` and
`projects.get()`, which Procore's docs require it on (`tutorials/tutorial_mpz.md`,
`oauth/oauth_client_credentials.md`): run.sh sets the simulator's `company_header` switch to
"inferred" for it.
"""

from __future__ import annotations

import os
from typing import Any

# flows.py sits beside this file, and a script's own directory is on sys.path.
from flows import Flows, Server, check, env

server = Server.from_env()
REDIRECT_URI = env("REDIRECT_URI", "urn:ietf:wg:oauth:2.0:oob")
flows = Flows("ProPyCore")

from ProPyCore import Procore  # noqa: E402
from ProPyCore.exceptions import ProcoreException  # noqa: E402

found = flows.found
COMPANY_ID, PROJECT_ID = server.company_id, server.project_id


def first_id(items: list[dict[str, Any]], env_name: str) -> int | None:
    if os.environ.get(env_name):
        return int(os.environ[env_name])
    return items[0]["id"] if items else None


if server.login_url != server.base_url:
    print(
        f"note: LOGIN_URL differs from BASE_URL; ProPyCore ignores oauth_url and requests its "
        f"token from {server.base_url}/oauth/token",
        flush=True,
    )


@flows.flow("oauth.client_credentials (Procore(...): POST {BASE_URL}/oauth/token, Basic + form)")
def _connect() -> str:
    found["sdk"] = Procore(
        client_id=server.client_id,
        client_secret=server.client_secret,
        redirect_uri=REDIRECT_URI,
        base_url=server.base_url,
        oauth_url=server.login_url,
    )
    return ""


@flows.flow("companies.get (GET /rest/v1.0/companies)", needs=("sdk",))
def _companies() -> str:
    ids = [c["id"] for c in found["sdk"].companies.get()]
    check(COMPANY_ID in ids, f"COMPANY_ID {COMPANY_ID} not in {ids}")
    found["companies"] = ids
    return f"{len(ids)} companies"


@flows.flow("companies.find (companies.get, then match id)", needs=("companies",))
def _company() -> str:
    company = found["sdk"].companies.find(COMPANY_ID)
    check(company["id"] == COMPANY_ID, f"got {company}")
    return f"name={company.get('name')!r}"


@flows.flow(
    "companies.get_projects (GET /rest/v1.0/companies/{company_id}/projects)", needs=("sdk",)
)
def _company_projects() -> str:
    ids = [p["id"] for p in found["sdk"].companies.get_projects(COMPANY_ID)]
    check(PROJECT_ID in ids, f"PROJECT_ID {PROJECT_ID} not in {ids}")
    return f"{len(ids)} projects"


@flows.flow(
    "projects.get (GET /rest/v1.1/projects?company_id=&filters[by_status]=All, pages until [])",
    needs=("sdk",),
)
def _projects() -> str:
    ids = [p["id"] for p in found["sdk"].projects.get(COMPANY_ID)]
    check(PROJECT_ID in ids, f"PROJECT_ID {PROJECT_ID} not in {ids}")
    found["projects"] = ids
    return f"{len(ids)} projects"


@flows.flow("projects.find (projects.get, then match id)", needs=("projects",))
def _project() -> str:
    project = found["sdk"].projects.find(COMPANY_ID, PROJECT_ID)
    check(project["id"] == PROJECT_ID, f"got {project.get('id')}")
    return f"name={project.get('name')!r}"


@flows.flow("rfis.get (GET /rest/v1.0/projects/{project_id}/rfis, pages until [])", needs=("sdk",))
def _rfis() -> str:
    rfis = found["sdk"].rfis.get(COMPANY_ID, PROJECT_ID)
    found["rfi_id"] = first_id(rfis, "RFI_ID")
    check(found["rfi_id"] is not None, "no RFI in the project")
    return f"{len(rfis)} RFIs"


@flows.flow("rfis.show (GET /rest/v1.0/projects/{project_id}/rfis/{id})", needs=("rfi_id",))
def _rfi() -> str:
    rfi = found["sdk"].rfis.show(COMPANY_ID, PROJECT_ID, found["rfi_id"])
    check(rfi["id"] == found["rfi_id"], f"got {rfi.get('id')}")
    return f"subject={rfi.get('subject')!r}"


@flows.flow("rfis.find by id (list, then show)", needs=("rfi_id",))
def _rfi_find() -> str:
    rfi = found["sdk"].rfis.find(COMPANY_ID, PROJECT_ID, found["rfi_id"])
    check(rfi["id"] == found["rfi_id"], f"got {rfi.get('id')}")
    return ""


@flows.flow(
    "submittals.get (GET /rest/v1.1/projects/{project_id}/submittals, pages until [])",
    needs=("sdk",),
)
def _submittals() -> str:
    submittals = found["sdk"].submittals.get(COMPANY_ID, PROJECT_ID)
    found["submittal_id"] = first_id(submittals, "SUBMITTAL_ID")
    check(found["submittal_id"] is not None, "no submittal in the project")
    return f"{len(submittals)} submittals"


@flows.flow(
    "submittals.show (GET /rest/v1.1/projects/{project_id}/submittals/{id})",
    needs=("submittal_id",),
)
def _submittal() -> str:
    submittal = found["sdk"].submittals.show(COMPANY_ID, PROJECT_ID, found["submittal_id"])
    check(submittal["id"] == found["submittal_id"], f"got {submittal.get('id')}")
    return f"title={submittal.get('title')!r}"


@flows.flow(
    "submittals.get_statuses "
    "(GET /rest/v1.0/projects/{project_id}/submittals/filter_options/status_id)",
    needs=("sdk",),
)
def _submittal_statuses() -> str:
    return f"{len(found['sdk'].submittals.get_statuses(COMPANY_ID, PROJECT_ID))} statuses"


@flows.flow(
    "quality.punch.get (GET /rest/v1.1/punch_items?project_id=, pages until [])", needs=("sdk",)
)
def _punch_items() -> str:
    items = found["sdk"].quality.punch.get(COMPANY_ID, PROJECT_ID)
    found["punch_item_id"] = first_id(items, "PUNCH_ITEM_ID")
    check(found["punch_item_id"] is not None, "no punch item in the project")
    return f"{len(items)} punch items"


@flows.flow(
    "quality.punch.show (GET /rest/v1.1/punch_items/{id}?project_id=)", needs=("punch_item_id",)
)
def _punch_item() -> str:
    item = found["sdk"].quality.punch.show(COMPANY_ID, PROJECT_ID, found["punch_item_id"])
    check(item["id"] == found["punch_item_id"], f"got {item.get('id')}")
    return ""


@flows.flow(
    "directory.users.get company (GET /rest/v1.1/companies/{company_id}/users, pages until [])",
    needs=("sdk",),
)
def _company_users() -> str:
    users = found["sdk"].directory.users.get(COMPANY_ID)
    found["company_user_id"] = first_id(users, "COMPANY_USER_ID")
    check(found["company_user_id"] is not None, "no company user")
    return f"{len(users)} users"


@flows.flow(
    "directory.users.show company (GET /rest/v1.3/companies/{company_id}/users/{id})",
    needs=("company_user_id",),
)
def _company_user() -> str:
    user = found["sdk"].directory.users.show(COMPANY_ID, None, found["company_user_id"])
    check(user["id"] == found["company_user_id"], f"got {user.get('id')}")
    return ""


@flows.flow(
    "directory.users.get project (GET /rest/v1.0/projects/{project_id}/users)", needs=("sdk",)
)
def _project_users() -> str:
    return f"{len(found['sdk'].directory.users.get(COMPANY_ID, PROJECT_ID))} users"


@flows.flow(
    "directory.vendors.get project (GET /rest/v1.1/projects/{project_id}/vendors, pages until [])",
    needs=("sdk",),
)
def _project_vendors() -> str:
    vendors = found["sdk"].directory.vendors.get(COMPANY_ID, PROJECT_ID)
    check(bool(vendors), "no vendor in the project")
    return f"{len(vendors)} vendors"


@flows.flow("directory.vendors.get company (GET /rest/v1.0/vendors?company_id=)", needs=("sdk",))
def _company_vendors() -> str:
    return f"{len(found['sdk'].directory.vendors.get(COMPANY_ID))} vendors"


@flows.flow("folders.root (GET /rest/v1.0/folders?project_id=)", needs=("sdk",))
def _folders_root() -> str:
    root = found["sdk"].folders.root(COMPANY_ID, PROJECT_ID)
    check(isinstance(root, dict), f"expected an object, got {type(root).__name__}")
    return f"{len(root.get('folders', []))} folders, {len(root.get('files', []))} files"


@flows.flow(
    "folders.get (GET /rest/v1.0/projects/{project_id}/documents?filters[document_type]=folder)",
    needs=("sdk",),
)
def _folders() -> str:
    return f"{len(found['sdk'].folders.get(COMPANY_ID, PROJECT_ID))} folders"


@flows.flow(
    "files.get (GET /rest/v1.0/projects/{project_id}/documents?filters[document_type]=file)",
    needs=("sdk",),
)
def _files() -> str:
    return f"{len(found['sdk'].files.get(COMPANY_ID, PROJECT_ID))} files"


@flows.flow("errors: unknown RFI answers 404 -> NotFoundClientError", needs=("rfi_id",))
def _not_found() -> str:
    try:
        found["sdk"].rfis.show(COMPANY_ID, PROJECT_ID, 987654321)
    except ProcoreException as exc:
        check(exc.message.startswith("404"), f"{type(exc).__name__}: {exc.message}")
        return type(exc).__name__
    raise AssertionError("no error for an unknown RFI")


@flows.flow(
    "token expiry: 401 -> UnauthorizedClientError, reset_access_token() recovers",
    needs=("rfi_id",),
)
def _expiry() -> str:
    sdk = found["sdk"]
    if not server.sim_control:
        sdk.reset_access_token()
        return "SIM_CONTROL!=1: no forced expiry; reset_access_token() only"
    expired = server.expire_tokens()
    try:
        sdk.rfis.show(COMPANY_ID, PROJECT_ID, found["rfi_id"])
    except ProcoreException as exc:
        check(exc.message.startswith("401"), f"expected a 401 error, got {exc.message}")
    else:
        raise AssertionError("an expired token was accepted")
    sdk.reset_access_token()
    rfi = sdk.rfis.show(COMPANY_ID, PROJECT_ID, found["rfi_id"])
    check(rfi["id"] == found["rfi_id"], "wrong RFI after reset")
    return f"expired={expired}; recovered"


flows.finish()
