"""The simulator's world of Procore resource types: one declarative entry each. Pure.

This table is the simulator's own account of Procore (its OpenAPI and documentation; each
entry names the operations it serves): it shares nothing with the service, so the two can
disagree and a test can tell. The REST layer serves every route listed here, with Procore's
list semantics:

- Default lists answer **active** records only (FACTS.md §4): a type with `activity` hides
  records whose flag is false, except on its `inactive_lists` (which answer only those) and
  where `status_filter` (Projects' `filters[by_status]=All|Active|Inactive`) says otherwise.
- A `dated` type (daily logs, timecards) lists only today's records unless `log_date`, or
  `start_date` and `end_date` (YYYY-MM-DD) are given (`tutorials/daily_logs.md`).
- An `approval` type lists only approved records unless `filters[status]=all|pending`.
- Every list takes `filters[id][]`; `paginated=False` lists ignore `page`/`per_page`.

Routes are templates: `{id}`, `{company_id}`, `{project_id}` in the path; a name after `?`
is a required query parameter (`?project_id`, `?company_id`).

A resource is stored as a small record (kind, ids, timestamps, fields) and rendered into the
body its show route answers. Updates bump `updated_at` (strictly increasing, millisecond
precision) and change one visible field.

Kinds with `writes` also take Procore's create, update, delete and sync calls
(simulator.writes): the routes, the body's wrapper key, where the scope goes, and the fields a
create must carry, each from the operation the entry names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

JSON = Any  # a decoded JSON value

ALL_EVENTS = frozenset({"create", "update", "delete"})
_V10 = "/rest/v1.0"
_V11 = "/rest/v1.1"
_P = "/rest/v1.0/projects/{project_id}"
_P11 = "/rest/v1.1/projects/{project_id}"


@dataclass(frozen=True, slots=True)
class Writes:
    """The calls that change a kind. Route templates as above (`?project_id`: a required
    query parameter); create is POST, update and sync PATCH, delete DELETE."""

    operations: tuple[str, ...]
    # The create/update body key holding the fields (`{"rfi": {...}}`).
    wrapper: str | None = None
    create: str | None = None
    update: str | None = None
    delete: str | None = None
    sync: str | None = None
    # Body keys that name the scope, required by the create/update (and by the sync) call.
    body_scope: tuple[str, ...] = ()
    sync_body_scope: tuple[str, ...] = ()
    # Fields a new resource must have (a create, or a sync item that creates).
    create_requires: tuple[str, ...] = ()
    update_requires: tuple[str, ...] = ()
    delete_status: int = 200


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    company_level: bool
    shows: tuple[str, ...]
    lists: tuple[str, ...]
    # OpenAPI operations the routes implement.
    operations: tuple[str, ...]
    fields: Callable[[int], dict[str, JSON]]
    changing: str = "name"
    # The event types Procore delivers for it (the rest are in `except` of
    # /webhooks/resources).
    events: frozenset[str] = ALL_EVENTS
    inactive_lists: tuple[str, ...] = ()
    activity: str | None = None
    status_filter: bool = False
    dated: bool = False
    approval: bool = False
    paginated: bool = True
    # Resources of this kind name a parent of that kind (v3.0 `related_resources`), whose id
    # is in this field.
    parent: str | None = None
    parent_field: str | None = None
    category: str = "Project Management"
    # Fields the show answers that lists leave out (Procore's compact list views).
    show_only: tuple[str, ...] = ()
    extra: dict[str, JSON] = field(default_factory=dict)
    writes: Writes | None = None

    def all_lists(self) -> tuple[str, ...]:
        return self.lists + self.inactive_lists


def _named(prefix: str, **more: JSON) -> Callable[[int], dict[str, JSON]]:
    def build(rid: int) -> dict[str, JSON]:
        return {"name": f"{prefix} {rid}", **more}

    return build


def _project_fields(rid: int) -> dict[str, JSON]:
    return {
        "name": f"Project {rid}",
        "display_name": f"{rid} - Project {rid}",
        "project_number": str(rid),
        "active": True,
        "stage": "Course of Construction",
        "address": "100 Main Street",
        "city": "Carpinteria",
        "state_code": "CA",
        "country_code": "US",
        "zip": "93013",
        "description": "Mixed-use building",
    }


def _user_fields(rid: int) -> dict[str, JSON]:
    return {
        "name": f"User {rid}",
        "first_name": "User",
        "last_name": str(rid),
        "email_address": f"user{rid}@example.com",
        "job_title": "Project Engineer",
        "is_active": True,
        "is_employee": True,
    }


def _vendor_fields(rid: int) -> dict[str, JSON]:
    return {
        "name": f"Vendor {rid}",
        "abbreviated_name": f"V{rid}",
        "trade_name": "Electrical",
        "business_phone": "+1 805 555 0100",
        "email_address": f"vendor{rid}@example.com",
        "is_active": True,
    }


def _document(rid: int, document_type: str, name: str) -> dict[str, JSON]:
    return {
        "name": name,
        "name_with_path": name,
        "parent_id": None,
        "document_type": document_type,
        "private": False,
        "is_tracked": False,
        "is_deleted": False,
        "is_recycle_bin": False,
        "read_only": False,
    }


def _log(name: str, segment: str, op: str, *, approval: bool = False) -> Kind:
    return Kind(
        name,
        False,
        (f"{_P}/{segment}/{{id}}",),
        (f"{_P}/{segment}",),
        (f"RestV10ProjectsProjectId{op}IdGet", f"RestV10ProjectsProjectId{op}Get"),
        lambda rid: {"notes": f"{name} entry {rid}", "status": "approved"},
        changing="notes",
        dated=True,
        approval=approval,
        category="Field Productivity",
    )


def _contract(
    name: str, path: str, op: str, show: str | None = None, *, synced: bool = False
) -> Kind:
    writes = Writes(
        (f"RestV10{op}SyncPatch", f"RestV10{op}IdDelete"),
        sync=f"{_V10}/{path}/sync",
        sync_body_scope=("project_id",),
        delete=f"{_V10}/{path}/{{id}}?project_id",
    )
    return Kind(
        name,
        False,
        (show or f"{_V10}/{path}/{{id}}?project_id",),
        (f"{_V10}/{path}?project_id",),
        (f"RestV10{op}IdGet", f"RestV10{op}Get"),
        lambda rid: {"number": str(rid % 1000), "title": f"{name} {rid}", "status": "Draft"},
        changing="title",
        category="Construction Financials",
        writes=writes if synced else None,
    )


KINDS_LIST: tuple[Kind, ...] = (
    # -- company directory -----------------------------------------------------------------
    Kind(
        "Projects",
        True,
        (f"{_V10}/projects/{{id}}",),
        (f"{_V10}/projects?company_id", f"{_V11}/projects?company_id"),
        ("RestV10ProjectsIdGet", "RestV10ProjectsGet", "RestV11ProjectsGet"),
        _project_fields,
        changing="description",
        events=frozenset({"create", "update"}),
        activity="active",
        status_filter=True,
        category="Core",
        writes=Writes(
            ("RestV10ProjectsSyncPatch",),
            sync=f"{_V10}/projects/sync",
            sync_body_scope=("company_id",),
            create_requires=("name",),
        ),
    ),
    Kind(
        "Company Users",
        True,
        (
            f"{_V10}/companies/{{company_id}}/users/{{id}}",
            "/rest/v1.3/companies/{company_id}/users/{id}",
        ),
        (f"{_V10}/companies/{{company_id}}/users", f"{_V11}/companies/{{company_id}}/users"),
        (
            "RestV10CompaniesCompanyIdUsersIdGet",
            "RestV13CompaniesCompanyIdUsersIdGet",
            "RestV10CompaniesCompanyIdUsersGet",
            "RestV11CompaniesCompanyIdUsersGet",
            "RestV10CompaniesCompanyIdUsersInactiveGet",
        ),
        _user_fields,
        changing="job_title",
        events=frozenset({"create", "update"}),
        inactive_lists=(f"{_V10}/companies/{{company_id}}/users/inactive",),
        activity="is_active",
        category="Core",
        writes=Writes(
            ("RestV10CompaniesCompanyIdUsersSyncPatch",),
            sync=f"{_V10}/companies/{{company_id}}/users/sync",
            # RestV10CompaniesCompanyIdUsersPost: `email_address` and `last_name`.
            create_requires=("email_address", "last_name"),
        ),
    ),
    Kind(
        "Company Vendors",
        True,
        (f"{_V10}/vendors/{{id}}?company_id",),
        (f"{_V10}/vendors?company_id",),
        (
            "RestV10VendorsIdGet",
            "RestV10VendorsGet",
            "RestV10CompaniesCompanyIdVendorsInactiveGet",
        ),
        _vendor_fields,
        changing="trade_name",
        events=frozenset({"create", "update"}),
        inactive_lists=(f"{_V10}/companies/{{company_id}}/vendors/inactive",),
        activity="is_active",
        category="Core",
        writes=Writes(
            ("RestV10VendorsSyncPatch",),
            sync=f"{_V10}/vendors/sync",
            sync_body_scope=("company_id",),
            # RestV10VendorsPost: `vendor.name`.
            create_requires=("name",),
        ),
    ),
    Kind(
        "Departments",
        True,
        (f"{_V10}/departments/{{id}}?company_id",),
        (f"{_V10}/departments?company_id",),
        ("RestV10DepartmentsIdGet", "RestV10DepartmentsGet"),
        _named("Department"),
        category="Core",
        extra={"timestamps": False},
    ),
    Kind(
        "Offices",
        True,
        (f"{_V10}/offices/{{id}}?company_id",),
        (f"{_V10}/offices?company_id",),
        ("RestV10OfficesIdGet", "RestV10OfficesGet"),
        _named("Office", city="Carpinteria"),
        category="Core",
        extra={"timestamps": False},
    ),
    Kind(
        "Trades",
        True,
        (f"{_V10}/companies/{{company_id}}/trades/{{id}}",),
        (f"{_V10}/companies/{{company_id}}/trades",),
        ("RestV10CompaniesCompanyIdTradesIdGet", "RestV10CompaniesCompanyIdTradesGet"),
        _named("Trade", active=True),
        events=frozenset({"create", "delete"}),
        category="Core",
    ),
    # -- project directory: updates moved to the company types on 2026-06-30 ---------------
    Kind(
        "Project Users",
        False,
        (f"{_P}/users/{{id}}",),
        (f"{_P}/users",),
        (
            "RestV10ProjectsProjectIdUsersIdGet",
            "RestV10ProjectsProjectIdUsersGet",
            "RestV10ProjectsProjectIdUsersInactiveGet",
        ),
        _user_fields,
        changing="job_title",
        events=frozenset({"create", "delete"}),
        inactive_lists=(f"{_P}/users/inactive",),
        activity="is_active",
        category="Core",
    ),
    Kind(
        "Project Vendors",
        False,
        (f"{_P11}/vendors/{{id}}",),
        (f"{_P11}/vendors",),
        (
            "RestV11ProjectsProjectIdVendorsIdGet",
            "RestV11ProjectsProjectIdVendorsGet",
            "RestV10ProjectsProjectIdVendorsInactiveGet",
        ),
        _vendor_fields,
        changing="trade_name",
        events=frozenset({"create", "delete"}),
        inactive_lists=(f"{_P}/vendors/inactive",),
        activity="is_active",
        category="Core",
    ),
    # -- project management ----------------------------------------------------------------
    Kind(
        "RFIs",
        False,
        (f"{_P}/rfis/{{id}}",),
        (f"{_P}/rfis",),
        ("RestV10ProjectsProjectIdRfisIdGet", "RestV10ProjectsProjectIdRfisGet"),
        lambda rid: {
            "number": str(rid % 1000),
            "subject": f"Clarify detail {rid}",
            "status": "open",
            "private": False,
            "due_date": "2026-04-15",
            "reference": None,
        },
        changing="subject",
        writes=Writes(
            ("RestV10ProjectsProjectIdRfisPost", "RestV10ProjectsProjectIdRfisIdPatch"),
            wrapper="rfi",
            create=f"{_P}/rfis",
            update=f"{_P}/rfis/{{id}}",
            create_requires=("subject", "question", "rfi_manager_id"),
        ),
    ),
    Kind(
        "Submittals",
        False,
        (f"{_P}/submittals/{{id}}", f"{_P11}/submittals/{{id}}"),
        (f"{_P}/submittals", f"{_P11}/submittals"),
        (
            "RestV10ProjectsProjectIdSubmittalsIdGet",
            "RestV11ProjectsProjectIdSubmittalsIdGet",
            "RestV10ProjectsProjectIdSubmittalsGet",
            "RestV11ProjectsProjectIdSubmittalsGet",
        ),
        lambda rid: {
            "number": str(rid % 1000),
            "revision": 0,
            "title": f"Shop drawings {rid}",
            "status": {"id": 1, "name": "Open"},
            "specification_section": {"id": 12, "number": "03 30 00", "description": "Concrete"},
            "due_date": "2026-05-01",
        },
        changing="title",
    ),
    Kind(
        "Submittal Packages",
        False,
        (),
        (f"{_P}/submittal_packages",),
        ("RestV10ProjectsProjectIdSubmittalPackagesGet",),
        lambda rid: {"number": str(rid % 100), "title": f"Package {rid}"},
        changing="title",
    ),
    Kind(
        "Punch Items",
        False,
        (f"{_V10}/punch_items/{{id}}?project_id", f"{_V11}/punch_items/{{id}}?project_id"),
        (f"{_V10}/punch_items?project_id", f"{_V11}/punch_items?project_id"),
        (
            "RestV10PunchItemsIdGet",
            "RestV11PunchItemsIdGet",
            "RestV10PunchItemsGet",
            "RestV11PunchItemsGet",
        ),
        lambda rid: {
            "position": rid % 1000,
            "name": f"Punch item {rid}",
            "status": "open",
            "workflow_status": "initialized",
            "priority": "medium",
            "description": "Touch up paint at door frame",
            "due_date": "2026-04-30",
        },
        changing="description",
        category="Quality & Safety",
    ),
    Kind(
        "Task Items",
        False,
        (f"{_V10}/task_items/{{id}}?project_id",),
        (f"{_V10}/task_items?project_id",),
        ("RestV10TaskItemsIdGet", "RestV10TaskItemsGet"),
        lambda rid: {"title": f"Task {rid}", "status": "initiated"},
        changing="title",
        events=frozenset({"create", "update"}),
    ),
    Kind(
        "Locations",
        False,
        (f"{_P}/locations/{{id}}",),
        (f"{_P}/locations",),
        ("RestV10ProjectsProjectIdLocationsLocationIdGet", "RestV10ProjectsProjectIdLocationsGet"),
        _named("Level"),
    ),
    # -- quality and safety ----------------------------------------------------------------
    Kind(
        "Observation Items",
        False,
        (f"{_V10}/observations/items/{{id}}?project_id",),
        (f"{_V10}/observations/items?project_id",),
        ("RestV10ObservationsItemsIdGet", "RestV10ObservationsItemsGet"),
        lambda rid: {
            "number": str(rid % 1000),
            "name": f"Observation {rid}",
            "status": "initiated",
            "priority": "Medium",
            "type": {"id": 3, "name": "Safety", "category": "Safety", "category_id": 1},
            "description": "Guardrail missing on level 3",
            "due_date": "2026-04-20",
        },
        changing="description",
        category="Quality & Safety",
        writes=Writes(
            (
                "RestV10ObservationsItemsPost",
                "RestV10ObservationsItemsIdPatch",
                "RestV10ProjectsProjectIdObservationsItemsIdDelete",
            ),
            wrapper="observation",
            create=f"{_V10}/observations/items",
            update=f"{_V10}/observations/items/{{id}}",
            delete=f"{_P}/observations/items/{{id}}",
            body_scope=("project_id",),
            create_requires=("name", "type_id"),
            update_requires=("name", "type_id"),
            # "Sends the specified Observation Item to the recycle bin": 204 No Content.
            delete_status=204,
        ),
    ),
    Kind(
        "Inspection Checklists",
        False,
        (f"{_P}/checklist/lists/{{id}}",),
        (f"{_P}/checklist/lists",),
        (
            "RestV10ProjectsProjectIdChecklistListsIdGet",
            "RestV10ProjectsProjectIdChecklistListsGet",
        ),
        _named("Inspection", status="in_progress"),
        events=frozenset({"create", "update"}),
        category="Quality & Safety",
    ),
    Kind(
        "Incidents",
        False,
        (f"{_P}/incidents/{{id}}",),
        (f"{_P}/incidents",),
        ("RestV10ProjectsProjectIdIncidentsIdGet", "RestV10ProjectsProjectIdIncidentsGet"),
        lambda rid: {"title": f"Incident {rid}", "status": "open", "recordable": False},
        changing="title",
        category="Quality & Safety",
    ),
    # -- financials ------------------------------------------------------------------------
    _contract(
        "Prime Contracts",
        "prime_contracts",
        "PrimeContracts",
        f"{_V10}/prime_contract/{{id}}?project_id",
    ),
    _contract(
        "Purchase Order Contracts",
        "purchase_order_contracts",
        "PurchaseOrderContracts",
        synced=True,
    ),
    _contract("Work Order Contracts", "work_order_contracts", "WorkOrderContracts", synced=True),
    Kind(
        "Change Events",
        False,
        (f"{_V11}/change_events/{{id}}?project_id", f"{_V10}/change_events/{{id}}?project_id"),
        (f"{_V11}/change_events?project_id", f"{_V10}/change_events?project_id"),
        ("RestV11ChangeEventsIdGet", "RestV10ChangeEventsIdGet", "RestV11ChangeEventsGet"),
        lambda rid: {"number": str(rid % 1000), "title": f"Change event {rid}", "status": "open"},
        changing="title",
        category="Construction Financials",
    ),
    _contract("Change Order Packages", "change_order_packages", "ChangeOrderPackages"),
    Kind(
        "Potential Change Orders",
        False,
        (),
        (f"{_V10}/potential_change_orders?project_id",),
        ("RestV10PotentialChangeOrdersGet",),
        lambda rid: {"number": str(rid % 1000), "title": f"PCO {rid}", "contract_id": 1},
        changing="title",
        category="Construction Financials",
    ),
    Kind(
        "Direct Costs",
        False,
        (f"{_P11}/direct_costs/{{id}}", f"{_P}/direct_costs/{{id}}"),
        (f"{_P11}/direct_costs",),
        ("RestV11ProjectsProjectIdDirectCostsIdGet", "RestV11ProjectsProjectIdDirectCostsGet"),
        lambda rid: {"description": f"Direct cost {rid}", "status": "draft", "grand_total": "0.0"},
        changing="description",
        category="Construction Financials",
        writes=Writes(
            (
                "RestV10ProjectsProjectIdDirectCostsSyncPatch",
                "RestV11ProjectsProjectIdDirectCostsIdDelete",
            ),
            sync=f"{_P}/direct_costs/sync",
            delete=f"{_P11}/direct_costs/{{id}}",
            # RestV11ProjectsProjectIdDirectCostsPost: what a new direct cost needs.
            create_requires=("invoice_number", "vendor_id", "direct_cost_type"),
        ),
    ),
    Kind(
        "Direct Cost Line Items",
        False,
        (),
        (f"{_P}/direct_costs/line_items",),
        ("RestV10ProjectsProjectIdDirectCostsLineItemsGet",),
        lambda rid: {"description": f"Line {rid}", "amount": "100.0"},
        changing="description",
        parent="Direct Costs",
        parent_field="direct_cost_id",
        category="Construction Financials",
    ),
    Kind(
        "Budget Modifications",
        False,
        (f"{_P}/budget_modifications/{{id}}",),
        (f"{_P}/budget_modifications",),
        (
            "RestV10ProjectsProjectIdBudgetModificationsIdGet",
            "RestV10ProjectsProjectIdBudgetModificationsGet",
        ),
        lambda rid: {"notes": f"Modification {rid}", "amount": "250.0"},
        changing="notes",
        category="Construction Financials",
    ),
    Kind(
        "Cost Codes",
        False,
        (f"{_V10}/cost_codes/{{id}}?project_id",),
        (f"{_V10}/cost_codes?project_id",),
        ("RestV10CostCodesIdGet", "RestV10CostCodesGet"),
        lambda rid: {"code": f"{rid % 100:02d}-000", "name": f"Cost code {rid}"},
        category="Construction Financials",
        writes=Writes(
            ("RestV10CostCodesSyncPatch",),
            sync=f"{_V10}/cost_codes/sync?project_id",
            # RestV10CostCodesPost: `cost_code.name` and `cost_code.code`.
            create_requires=("name", "code"),
        ),
    ),
    Kind(
        "Payment Applications",
        False,
        (f"{_V10}/payment_applications/{{id}}?project_id",),
        (f"{_V10}/payment_applications?project_id",),
        ("RestV10PaymentApplicationsIdGet", "RestV10PaymentApplicationsGet"),
        lambda rid: {"number": str(rid % 100), "status": "draft"},
        changing="status",
        category="Construction Financials",
    ),
    # -- field -----------------------------------------------------------------------------
    _log("Manpower Logs", "manpower_logs", "ManpowerLogs", approval=True),
    _log("Notes Logs", "notes_logs", "NotesLogs", approval=True),
    _log("Work Logs", "work_logs", "WorkLogs"),
    _log("Delivery Logs", "delivery_logs", "DeliveryLogs", approval=True),
    _log("Equipment Logs", "equipment_logs", "EquipmentLogs"),
    _log("Visitor Logs", "visitor_logs", "VisitorLogs"),
    _log("Accident Logs", "accident_logs", "AccidentLogs"),
    _log("Safety Violation Logs", "safety_violation_logs", "SafetyViolationLogs"),
    _log("Inspection Logs", "inspection_logs", "InspectionLogs"),
    Kind(
        "Timecard Entries",
        False,
        (f"{_P}/timecard_entries/{{id}}",),
        (f"{_P}/timecard_entries",),
        (
            "RestV10ProjectsProjectIdTimecardEntriesIdGet",
            "RestV10ProjectsProjectIdTimecardEntriesGet",
        ),
        lambda rid: {"hours": "8.0", "description": f"Timecard {rid}"},
        changing="description",
        dated=True,
        category="Field Productivity",
    ),
    # -- documents -------------------------------------------------------------------------
    Kind(
        "Images",
        False,
        (f"{_V10}/images/{{id}}?project_id",),
        (f"{_V10}/images?project_id",),
        ("RestV10ImagesIdGet", "RestV10ImagesGet"),
        lambda rid: {"description": f"Photo {rid}", "filename": f"IMG_{rid}.jpg"},
        changing="description",
    ),
    Kind(
        "Drawing Uploads",
        False,
        (f"{_P11}/drawing_uploads/{{id}}",),
        (f"{_P11}/drawing_uploads",),
        (
            "RestV11ProjectsProjectIdDrawingUploadsIdGet",
            "RestV11ProjectsProjectIdDrawingUploadsGet",
        ),
        lambda rid: {"status": "processing", "filename": f"A{rid}.pdf"},
        changing="status",
    ),
    # Folders and files: shown one by one; listed together by the project's document index
    # (`RestV10ProjectsProjectIdDocumentsGet`) and the root folder (`RestV10FoldersGet`),
    # which the REST layer serves for both kinds.
    Kind(
        "Project Folders",
        False,
        (f"{_V10}/folders/{{id}}?project_id",),
        (),
        ("RestV10FoldersIdGet", "RestV10ProjectsProjectIdDocumentsGet", "RestV10FoldersGet"),
        lambda rid: _document(rid, "folder", f"Folder {rid}"),
        category="Core",
    ),
    Kind(
        "Project Files",
        False,
        (f"{_V10}/files/{{id}}?project_id",),
        (),
        ("RestV10FilesIdGet", "RestV10ProjectsProjectIdDocumentsGet"),
        lambda rid: {
            **_document(rid, "file", f"drawing-{rid}.pdf"),
            "description": "",
            "size": 20480,
            "file_type": "pdf",
            "file_versions": [{"id": rid * 10, "number": 1, "size": 20480}],
        },
        category="Core",
    ),
    Kind(
        "Specification Sections",
        False,
        (),
        (f"{_V10}/specification_sections?project_id",),
        ("RestV10SpecificationSectionsGet",),
        lambda rid: {"number": f"03 {rid % 100:02d} 00", "description": f"Section {rid}"},
        changing="description",
        events=frozenset({"create", "update"}),
        paginated=False,
        extra={"timestamps": False},
    ),
)

KINDS: dict[str, Kind] = {k.name: k for k in KINDS_LIST}

# Resource types Procore sends webhooks for that the simulator does not serve: listed by
# /webhooks/resources all the same (a sandbox listing, FACTS.md §10).
OTHER_WEBHOOK_RESOURCES: dict[str, frozenset[str]] = {
    "Company Files": ALL_EVENTS,
    "Company Folders": ALL_EVENTS,
    "Change Types": ALL_EVENTS,
    "Standard Cost Codes": ALL_EVENTS,
    "RFI Replies": ALL_EVENTS,
    "Meetings": ALL_EVENTS,
    "Drawings": ALL_EVENTS,
    "Drawing Sets": ALL_EVENTS,
    "Project Files": ALL_EVENTS,
    "Project Folders": ALL_EVENTS,
    "Daily Logs": frozenset({"create", "update"}),
    "Weather Logs": frozenset({"create", "update"}),
    "Budget Line Items": ALL_EVENTS,
    "Change Event Line Items": ALL_EVENTS,
}


def kind_of(name: str) -> Kind:
    """The kind of that name; ValueError naming the known ones otherwise."""
    found = KINDS.get(name)
    if found is None:
        raise ValueError(f"unknown resource_name {name!r} (known: {', '.join(KINDS)})")
    return found


@dataclass(slots=True)
class Resource:
    kind: Kind
    id: int
    company_id: int
    # For company-level kinds this is None; a project's own id is `id`.
    project_id: int | None
    created_at: datetime
    updated_at: datetime
    fields: dict[str, JSON] = field(default_factory=dict)
    revision: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind.name, self.id)

    @property
    def active(self) -> bool:
        flag = self.kind.activity
        return flag is None or self.fields.get(flag) is not False

    @property
    def day(self) -> str | None:
        value = self.fields.get("date")
        return value if isinstance(value, str) else None


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, the form Procore's REST bodies use."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def new_resource(
    kind: Kind,
    resource_id: int,
    company_id: int,
    project_id: int | None,
    now: datetime,
    overrides: dict[str, JSON] | None = None,
) -> Resource:
    fields = kind.fields(resource_id)
    if kind.dated:
        fields["date"] = now.date().isoformat()
    fields.update(overrides or {})
    stamp = _truncate_to_millis(now)
    return Resource(
        kind=kind,
        id=resource_id,
        company_id=company_id,
        project_id=None if kind.company_level else project_id,
        created_at=stamp,
        updated_at=stamp,
        fields=fields,
    )


def apply_update(
    resource: Resource, now: datetime, overrides: dict[str, JSON] | None = None
) -> None:
    """Change the resource the way a user edit would: new field value, later `updated_at`."""
    resource.revision += 1
    name = resource.kind.changing
    base = str(resource.fields.get(name, "")).split(" (rev ", 1)[0]
    resource.fields[name] = f"{base} (rev {resource.revision})"
    resource.fields.update(overrides or {})
    stamp = _truncate_to_millis(now)
    floor = resource.updated_at + timedelta(milliseconds=1)
    resource.updated_at = max(stamp, floor)


def apply_write(resource: Resource, now: datetime, fields: dict[str, JSON]) -> None:
    """Change the resource as a client's update call asks: exactly those fields, a later
    `updated_at`."""
    resource.revision += 1
    resource.fields.update(fields)
    stamp = _truncate_to_millis(now)
    resource.updated_at = max(stamp, resource.updated_at + timedelta(milliseconds=1))


def render(resource: Resource, company_name: str) -> dict[str, JSON]:
    """The body of the resource's show route (and of its list items)."""
    body: dict[str, JSON] = {"id": resource.id}
    body.update(resource.fields)
    if resource.kind.name == "Projects":
        body["company"] = {"id": resource.company_id, "name": company_name}
    if resource.kind.extra.get("timestamps", True):
        body["created_at"] = iso_millis(resource.created_at)
        body["updated_at"] = iso_millis(resource.updated_at)
    return body


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _truncate_to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
