"""The Procore resource types the service syncs: one declarative entry each. Pure.

Everything that needs to know a resource type reads it here: settings (the `SYNC_RESOURCES`
default and its validation), the receiver (supported or `unsupported`, company or project
level), the pipeline (the show call and its answer), resync (the list calls), subscriptions
(the event types a hook subscribes) and the operator surfaces (validation, docs). Adding a
resource is one entry below (plus one in the simulator's own world, and tests that walk
this table).

Each entry cites the Procore OpenAPI operations of its show and list paths (operationIds as
in developers.procore.com/reference/rest and the SDKs generated from it). Conventions:

- Paths are templates over `{id}`, `{company_id}` and `{project_id}`; their query strings are
  part of the template. v1.x answers are bare objects and lists with integer ids; a v2.0
  answer wraps them in `{"data": …}` (`Envelope.DATA`).
- `lists` are the list calls that together cover every record that exists, active or not:
  Procore's default lists answer active records only (FACTS.md §4), so a type names the
  filter that includes inactive ones, or the separate list of inactive ones.
- A type whose list answers one day unless dates are given (daily logs, timecards) has a
  `window`: resync lists it day range by day range, so a backfill covers past days too.
- `show_by_list`: Procore has no show call the event's ids can reach (e.g. the line item's
  show needs its parent's id), so the list filtered by id serves instead.
- `paginated=False`: the list takes no `page`/`per_page` and answers everything at once.
- `parent`: a v3.0 event's `related_resources` may name the parent (a Direct Cost Line Item
  names its Direct Cost): the parent is refreshed too.
- `deprecated`: event types Procore stopped delivering, and the type that replaced them
  (`announcements/webhook_fanout_migration.md`).
- `writes`: the calls that change the type, for the types the service writes back (app.writes).
  A type with a sync action (`tutorials/using_sync_actions.md`, FACTS.md §11) is created and
  updated through it, keyed by `origin_id`: batch create-or-update of up to 1000 items, always
  answered 200 with `entities` and per-item `errors`, idempotent by construction. The other
  types are created and updated one call each, the fields under the body's `wrapper` key;
  `scope_in_body` names the top-level body keys the operation wants its company or project in.
  A plain create whose answer was lost is looked up with `lookup` (a list filtered by a field
  the payload carries) before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from app.registry.ids import id_of

EVENT_TYPES = ("create", "update", "delete")
ALL_EVENTS = frozenset(EVENT_TYPES)
CREATE_UPDATE = frozenset({"create", "update"})


class Level(StrEnum):
    COMPANY = "company"
    PROJECT = "project"


class Envelope(StrEnum):
    BARE = "bare"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class DateWindow:
    """A list that answers only today unless given a date range (`tutorials/daily_logs.md`:
    "If none of the date parameters are provided in the call, only logs from the current
    date are returned")."""

    start_param: str = "start_date"
    end_param: str = "end_date"
    # The body field that holds the record's day (YYYY-MM-DD).
    day_field: str = "date"
    # Days per list call.
    max_days: int = 31


@dataclass(frozen=True, slots=True)
class Deprecation:
    event_types: frozenset[str]
    since: date
    replacement: str
    why: str


# Items per sync call (`tutorials/using_sync_actions.md`: "Attributes for a maximum of 1000
# resources within a collection may be passed with each call").
MAX_SYNC_ITEMS = 1000


class WriteKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SYNC = "sync"


@dataclass(frozen=True, slots=True)
class WriteCall:
    method: str
    # A template over {id}, {company_id}, {project_id}, like `show`.
    path: str
    operation: str
    # The body key holding the resource's fields (`{"vendor": {...}}`); None: no body.
    wrapper: str | None = None
    # Top-level body keys that carry the job's scope ("company_id", "project_id").
    scope_in_body: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Lookup:
    """Where to look for a plain create whose answer was lost: the list filtered by the value
    of `field` in the payload (`{value}` in `path`)."""

    path: str
    field: str
    operation: str


@dataclass(frozen=True, slots=True)
class Writes:
    create: WriteCall | None = None
    update: WriteCall | None = None
    delete: WriteCall | None = None
    sync: WriteCall | None = None
    # Fields a plain create's (and update's) payload must carry (the OpenAPI's `required`).
    create_requires: tuple[str, ...] = ()
    update_requires: tuple[str, ...] = ()
    lookup: Lookup | None = None

    def call(self, kind: WriteKind) -> WriteCall | None:
        return {
            WriteKind.CREATE: self.create,
            WriteKind.UPDATE: self.update,
            WriteKind.DELETE: self.delete,
            WriteKind.SYNC: self.sync,
        }[kind]

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(
            c.operation for c in (self.sync, self.create, self.update, self.delete) if c
        ) + ((self.lookup.operation,) if self.lookup else ())


@dataclass(frozen=True, slots=True)
class ResourceType:
    name: str
    level: Level
    show: str
    lists: tuple[str, ...]
    # OpenAPI operationIds: the show, then the lists.
    operations: tuple[str, ...]
    events: frozenset[str] = ALL_EVENTS
    window: DateWindow | None = None
    show_by_list: bool = False
    # A list that takes no `page`/`per_page` and answers everything at once.
    paginated: bool = True
    parent: str | None = None
    id_field: str = "id"
    updated_field: str | None = "updated_at"
    envelope: Envelope = Envelope.BARE
    deprecated: Deprecation | None = None
    category: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    writes: Writes | None = None

    @property
    def company_level(self) -> bool:
        return self.level is Level.COMPANY

    def subscribed_events(self, today: date | None = None) -> frozenset[str]:
        """The event types a hook subscribes by default: minus those Procore stopped."""
        gone = self.deprecated
        if gone is not None and (today or date.today()) >= gone.since:
            return self.events - gone.event_types
        return self.events

    def served_as(self, event_type: str, today: date | None = None) -> str:
        """Which type serves an event: a deprecated event type is served by its replacement
        (one contact edit, one fetch of the company record, whatever fan-out brought it)."""
        gone = self.deprecated
        if (
            gone is not None
            and event_type in gone.event_types
            and (today or date.today()) >= gone.since
        ):
            return gone.replacement
        return self.name


def _company(name: str, show: str, *lists: str, ops: tuple[str, ...], **kw: Any) -> ResourceType:
    return ResourceType(name, Level.COMPANY, show, tuple(lists), ops, category="directory", **kw)


def _project(
    name: str, show: str, *lists: str, ops: tuple[str, ...], category: str, **kw: Any
) -> ResourceType:
    return ResourceType(name, Level.PROJECT, show, tuple(lists), ops, category=category, **kw)


_FANOUT = date(2026, 6, 30)
_LOG = DateWindow()
_V10 = "/rest/v1.0"
_P = "/rest/v1.0/projects/{project_id}"


def _contract_writes(segment: str, op: str) -> Writes:
    """Purchase Order and Work Order Contracts: synced with the project in the body, deleted
    with it in the query."""
    return Writes(
        sync=WriteCall(
            "PATCH",
            f"{_V10}/{segment}/sync",
            f"RestV10{op}SyncPatch",
            scope_in_body=("project_id",),
        ),
        delete=WriteCall(
            "DELETE", f"{_V10}/{segment}/{{id}}?project_id={{project_id}}", f"RestV10{op}IdDelete"
        ),
    )


def _log(name: str, segment: str, op: str, *, all_statuses: bool = False) -> ResourceType:
    """A daily-log type: shown by id, listed by day range (approved only, unless asked)."""
    listing = f"{_P}/{segment}" + ("?filters[status]=all" if all_statuses else "")
    return _project(
        name,
        f"{_P}/{segment}/{{id}}",
        listing,
        ops=(f"RestV10ProjectsProjectId{op}IdGet", f"RestV10ProjectsProjectId{op}Get"),
        category="field",
        window=_LOG,
    )


_TYPES: tuple[ResourceType, ...] = (
    # -- directory (company level) ---------------------------------------------------------
    _company(
        "Projects",
        f"{_V10}/projects/{{id}}?company_id={{company_id}}",
        # Default: active projects only; `filters[by_status]=All` lists inactive ones too.
        f"{_V10}/projects?company_id={{company_id}}&filters[by_status]=All",
        ops=("RestV10ProjectsIdGet", "RestV10ProjectsGet"),
        events=CREATE_UPDATE,
        writes=Writes(
            sync=WriteCall(
                "PATCH",
                f"{_V10}/projects/sync",
                "RestV10ProjectsSyncPatch",
                scope_in_body=("company_id",),
            ),
        ),
    ),
    _company(
        "Company Users",
        f"{_V10}/companies/{{company_id}}/users/{{id}}",
        # Active users, then the inactive ones (there is no include-inactive filter).
        f"{_V10}/companies/{{company_id}}/users",
        f"{_V10}/companies/{{company_id}}/users/inactive",
        ops=(
            "RestV10CompaniesCompanyIdUsersIdGet",
            "RestV10CompaniesCompanyIdUsersGet",
            "RestV10CompaniesCompanyIdUsersInactiveGet",
        ),
        writes=Writes(
            sync=WriteCall(
                "PATCH",
                f"{_V10}/companies/{{company_id}}/users/sync",
                "RestV10CompaniesCompanyIdUsersSyncPatch",
            ),
        ),
    ),
    _company(
        "Company Vendors",
        f"{_V10}/vendors/{{id}}?company_id={{company_id}}",
        f"{_V10}/vendors?company_id={{company_id}}",
        f"{_V10}/companies/{{company_id}}/vendors/inactive",
        ops=(
            "RestV10VendorsIdGet",
            "RestV10VendorsGet",
            "RestV10CompaniesCompanyIdVendorsInactiveGet",
        ),
        writes=Writes(
            sync=WriteCall(
                "PATCH",
                f"{_V10}/vendors/sync",
                "RestV10VendorsSyncPatch",
                scope_in_body=("company_id",),
            ),
        ),
    ),
    _company(
        "Departments",
        f"{_V10}/departments/{{id}}?company_id={{company_id}}",
        f"{_V10}/departments?company_id={{company_id}}",
        ops=("RestV10DepartmentsIdGet", "RestV10DepartmentsGet"),
        updated_field=None,
    ),
    _company(
        "Offices",
        f"{_V10}/offices/{{id}}?company_id={{company_id}}",
        f"{_V10}/offices?company_id={{company_id}}",
        ops=("RestV10OfficesIdGet", "RestV10OfficesGet"),
        updated_field=None,
    ),
    _company(
        "Trades",
        f"{_V10}/companies/{{company_id}}/trades/{{id}}",
        f"{_V10}/companies/{{company_id}}/trades",
        ops=("RestV10CompaniesCompanyIdTradesIdGet", "RestV10CompaniesCompanyIdTradesGet"),
        events=frozenset({"create", "delete"}),
    ),
    # -- project directory (fan-out sources; their updates moved to the company types) ------
    _project(
        "Project Users",
        f"{_P}/users/{{id}}",
        f"{_P}/users",
        f"{_P}/users/inactive",
        ops=(
            "RestV10ProjectsProjectIdUsersIdGet",
            "RestV10ProjectsProjectIdUsersGet",
            "RestV10ProjectsProjectIdUsersInactiveGet",
        ),
        category="directory",
        deprecated=Deprecation(
            frozenset({"update"}),
            _FANOUT,
            "Company Users",
            "one contact edit fanned out to one event per project",
        ),
    ),
    _project(
        "Project Vendors",
        "/rest/v1.1/projects/{project_id}/vendors/{id}",
        "/rest/v1.1/projects/{project_id}/vendors",
        f"{_P}/vendors/inactive",
        ops=(
            "RestV11ProjectsProjectIdVendorsIdGet",
            "RestV11ProjectsProjectIdVendorsGet",
            "RestV10ProjectsProjectIdVendorsInactiveGet",
        ),
        category="directory",
        deprecated=Deprecation(
            frozenset({"update"}),
            _FANOUT,
            "Company Vendors",
            "one vendor edit fanned out to one event per project",
        ),
    ),
    # -- project management ----------------------------------------------------------------
    _project(
        "RFIs",
        f"{_P}/rfis/{{id}}",
        f"{_P}/rfis",
        ops=("RestV10ProjectsProjectIdRfisIdGet", "RestV10ProjectsProjectIdRfisGet"),
        category="project management",
        writes=Writes(
            create=WriteCall(
                "POST", f"{_P}/rfis", "RestV10ProjectsProjectIdRfisPost", wrapper="rfi"
            ),
            update=WriteCall(
                "PATCH", f"{_P}/rfis/{{id}}", "RestV10ProjectsProjectIdRfisIdPatch", wrapper="rfi"
            ),
            create_requires=("subject", "question", "rfi_manager_id"),
            # An RFI's number is the caller's to give (`filters[number]` of the list).
            lookup=Lookup(
                f"{_P}/rfis?filters[number]={{value}}", "number", "RestV10ProjectsProjectIdRfisGet"
            ),
        ),
    ),
    _project(
        "Submittals",
        "/rest/v1.1/projects/{project_id}/submittals/{id}",
        "/rest/v1.1/projects/{project_id}/submittals",
        ops=("RestV11ProjectsProjectIdSubmittalsIdGet", "RestV11ProjectsProjectIdSubmittalsGet"),
        category="project management",
    ),
    _project(
        "Submittal Packages",
        # No show operation: the list filtered by id.
        f"{_P}/submittal_packages?filters[id][]={{id}}",
        f"{_P}/submittal_packages",
        ops=("RestV10ProjectsProjectIdSubmittalPackagesGet",),
        category="project management",
        show_by_list=True,
    ),
    _project(
        "Punch Items",
        f"{_V10}/punch_items/{{id}}?project_id={{project_id}}",
        f"{_V10}/punch_items?project_id={{project_id}}",
        ops=("RestV10PunchItemsIdGet", "RestV10PunchItemsGet"),
        category="project management",
    ),
    _project(
        "Task Items",
        f"{_V10}/task_items/{{id}}?project_id={{project_id}}",
        f"{_V10}/task_items?project_id={{project_id}}",
        ops=("RestV10TaskItemsIdGet", "RestV10TaskItemsGet"),
        category="project management",
        events=CREATE_UPDATE,
    ),
    _project(
        "Locations",
        f"{_P}/locations/{{id}}",
        f"{_P}/locations",
        ops=(
            "RestV10ProjectsProjectIdLocationsLocationIdGet",
            "RestV10ProjectsProjectIdLocationsGet",
        ),
        category="project management",
    ),
    # -- quality and safety ----------------------------------------------------------------
    _project(
        "Observation Items",
        f"{_V10}/observations/items/{{id}}?project_id={{project_id}}",
        f"{_V10}/observations/items?project_id={{project_id}}",
        ops=("RestV10ObservationsItemsIdGet", "RestV10ObservationsItemsGet"),
        category="quality and safety",
        writes=Writes(
            create=WriteCall(
                "POST",
                f"{_V10}/observations/items",
                "RestV10ObservationsItemsPost",
                wrapper="observation",
                scope_in_body=("project_id",),
            ),
            update=WriteCall(
                "PATCH",
                f"{_V10}/observations/items/{{id}}",
                "RestV10ObservationsItemsIdPatch",
                wrapper="observation",
                scope_in_body=("project_id",),
            ),
            delete=WriteCall(
                "DELETE",
                f"{_P}/observations/items/{{id}}",
                "RestV10ProjectsProjectIdObservationsItemsIdDelete",
            ),
            create_requires=("name", "type_id"),
            update_requires=("name", "type_id"),
        ),
    ),
    _project(
        "Inspection Checklists",
        f"{_P}/checklist/lists/{{id}}",
        f"{_P}/checklist/lists",
        ops=(
            "RestV10ProjectsProjectIdChecklistListsIdGet",
            "RestV10ProjectsProjectIdChecklistListsGet",
        ),
        category="quality and safety",
        events=CREATE_UPDATE,
    ),
    _project(
        "Incidents",
        f"{_P}/incidents/{{id}}",
        f"{_P}/incidents",
        ops=("RestV10ProjectsProjectIdIncidentsIdGet", "RestV10ProjectsProjectIdIncidentsGet"),
        category="quality and safety",
    ),
    # -- financials ------------------------------------------------------------------------
    _project(
        "Prime Contracts",
        # The show is singular `prime_contract`, the list plural.
        f"{_V10}/prime_contract/{{id}}?project_id={{project_id}}",
        f"{_V10}/prime_contracts?project_id={{project_id}}",
        ops=("RestV10PrimeContractIdGet", "RestV10PrimeContractsGet"),
        category="financials",
    ),
    _project(
        "Purchase Order Contracts",
        f"{_V10}/purchase_order_contracts/{{id}}?project_id={{project_id}}",
        f"{_V10}/purchase_order_contracts?project_id={{project_id}}",
        ops=("RestV10PurchaseOrderContractsIdGet", "RestV10PurchaseOrderContractsGet"),
        category="financials",
        writes=_contract_writes("purchase_order_contracts", "PurchaseOrderContracts"),
    ),
    _project(
        "Work Order Contracts",
        f"{_V10}/work_order_contracts/{{id}}?project_id={{project_id}}",
        f"{_V10}/work_order_contracts?project_id={{project_id}}",
        ops=("RestV10WorkOrderContractsIdGet", "RestV10WorkOrderContractsGet"),
        category="financials",
        writes=_contract_writes("work_order_contracts", "WorkOrderContracts"),
    ),
    _project(
        "Change Events",
        "/rest/v1.1/change_events/{id}?project_id={project_id}",
        "/rest/v1.1/change_events?project_id={project_id}",
        ops=("RestV11ChangeEventsIdGet", "RestV11ChangeEventsGet"),
        category="financials",
    ),
    _project(
        "Change Order Packages",
        f"{_V10}/change_order_packages/{{id}}?project_id={{project_id}}",
        f"{_V10}/change_order_packages?project_id={{project_id}}",
        ops=("RestV10ChangeOrderPackagesIdGet", "RestV10ChangeOrderPackagesGet"),
        category="financials",
    ),
    _project(
        "Potential Change Orders",
        # The show needs a contract_id the event does not carry: the list filtered by id.
        f"{_V10}/potential_change_orders?project_id={{project_id}}&filters[id][]={{id}}",
        f"{_V10}/potential_change_orders?project_id={{project_id}}",
        ops=("RestV10PotentialChangeOrdersGet",),
        category="financials",
        show_by_list=True,
    ),
    _project(
        "Direct Costs",
        "/rest/v1.1/projects/{project_id}/direct_costs/{id}",
        "/rest/v1.1/projects/{project_id}/direct_costs",
        ops=("RestV11ProjectsProjectIdDirectCostsIdGet", "RestV11ProjectsProjectIdDirectCostsGet"),
        category="financials",
        writes=Writes(
            sync=WriteCall(
                "PATCH",
                f"{_P}/direct_costs/sync",
                "RestV10ProjectsProjectIdDirectCostsSyncPatch",
            ),
            delete=WriteCall(
                "DELETE",
                "/rest/v1.1/projects/{project_id}/direct_costs/{id}",
                "RestV11ProjectsProjectIdDirectCostsIdDelete",
            ),
        ),
    ),
    _project(
        "Direct Cost Line Items",
        # The show needs the parent's id; the list of all line items takes an id filter.
        f"{_P}/direct_costs/line_items?filters[id][]={{id}}",
        f"{_P}/direct_costs/line_items",
        ops=("RestV10ProjectsProjectIdDirectCostsLineItemsGet",),
        category="financials",
        show_by_list=True,
        parent="Direct Costs",
    ),
    _project(
        "Budget Modifications",
        f"{_P}/budget_modifications/{{id}}",
        f"{_P}/budget_modifications",
        ops=(
            "RestV10ProjectsProjectIdBudgetModificationsIdGet",
            "RestV10ProjectsProjectIdBudgetModificationsGet",
        ),
        category="financials",
    ),
    _project(
        "Cost Codes",
        f"{_V10}/cost_codes/{{id}}?project_id={{project_id}}",
        f"{_V10}/cost_codes?project_id={{project_id}}",
        ops=("RestV10CostCodesIdGet", "RestV10CostCodesGet"),
        category="financials",
        writes=Writes(
            sync=WriteCall(
                "PATCH",
                f"{_V10}/cost_codes/sync?project_id={{project_id}}",
                "RestV10CostCodesSyncPatch",
            ),
        ),
    ),
    _project(
        "Payment Applications",
        f"{_V10}/payment_applications/{{id}}?project_id={{project_id}}",
        f"{_V10}/payment_applications?project_id={{project_id}}",
        ops=("RestV10PaymentApplicationsIdGet", "RestV10PaymentApplicationsGet"),
        category="financials",
    ),
    # -- field: daily logs by type, timecards ----------------------------------------------
    _log("Manpower Logs", "manpower_logs", "ManpowerLogs", all_statuses=True),
    _log("Notes Logs", "notes_logs", "NotesLogs", all_statuses=True),
    _log("Work Logs", "work_logs", "WorkLogs"),
    _log("Delivery Logs", "delivery_logs", "DeliveryLogs", all_statuses=True),
    _log("Equipment Logs", "equipment_logs", "EquipmentLogs"),
    _log("Visitor Logs", "visitor_logs", "VisitorLogs"),
    _log("Accident Logs", "accident_logs", "AccidentLogs"),
    _log("Safety Violation Logs", "safety_violation_logs", "SafetyViolationLogs"),
    _log("Inspection Logs", "inspection_logs", "InspectionLogs"),
    _project(
        "Timecard Entries",
        f"{_P}/timecard_entries/{{id}}",
        f"{_P}/timecard_entries",
        ops=(
            "RestV10ProjectsProjectIdTimecardEntriesIdGet",
            "RestV10ProjectsProjectIdTimecardEntriesGet",
        ),
        category="field",
        window=_LOG,
    ),
    # -- documents -------------------------------------------------------------------------
    _project(
        "Images",
        f"{_V10}/images/{{id}}?project_id={{project_id}}",
        f"{_V10}/images?project_id={{project_id}}",
        ops=("RestV10ImagesIdGet", "RestV10ImagesGet"),
        category="documents",
    ),
    _project(
        "Drawing Uploads",
        "/rest/v1.1/projects/{project_id}/drawing_uploads/{id}",
        "/rest/v1.1/projects/{project_id}/drawing_uploads",
        ops=(
            "RestV11ProjectsProjectIdDrawingUploadsIdGet",
            "RestV11ProjectsProjectIdDrawingUploadsGet",
        ),
        category="documents",
    ),
    _project(
        "Project Folders",
        f"{_V10}/folders/{{id}}?project_id={{project_id}}",
        # The project's document index lists every folder and file, paginated.
        f"{_P}/documents?filters[document_type]=folder",
        ops=("RestV10FoldersIdGet", "RestV10ProjectsProjectIdDocumentsGet"),
        category="documents",
    ),
    _project(
        "Project Files",
        f"{_V10}/files/{{id}}?project_id={{project_id}}",
        f"{_P}/documents?filters[document_type]=file",
        ops=("RestV10FilesIdGet", "RestV10ProjectsProjectIdDocumentsGet"),
        category="documents",
    ),
    _project(
        "Specification Sections",
        # No show operation, and the list is not paginated: the list filtered by id.
        f"{_V10}/specification_sections?project_id={{project_id}}&filters[id][]={{id}}",
        f"{_V10}/specification_sections?project_id={{project_id}}",
        ops=("RestV10SpecificationSectionsGet",),
        category="documents",
        show_by_list=True,
        paginated=False,
        events=CREATE_UPDATE,
        updated_field=None,
    ),
)

REGISTRY: Mapping[str, ResourceType] = {t.name: t for t in _TYPES}
NAMES: tuple[str, ...] = tuple(REGISTRY)
COMPANY_LEVEL: frozenset[str] = frozenset(t.name for t in _TYPES if t.company_level)
# The types the service writes back (app.writes).
WRITABLE: tuple[str, ...] = tuple(t.name for t in _TYPES if t.writes is not None)


def get(name: str | None) -> ResourceType | None:
    return None if name is None else REGISTRY.get(name)


def is_supported(name: str | None) -> bool:
    return name is not None and name in REGISTRY


def default_sync_resources() -> list[str]:
    """Every registered type: a type that is registered is worth subscribing."""
    return list(NAMES)


def unknown(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in REGISTRY]


class MissingProject(ValueError):
    """The resource lives in a project but the event names none."""


def show_path(
    resource: ResourceType, resource_id: int, *, company_id: int, project_id: int | None
) -> str:
    """The call that shows one resource (for `show_by_list` types, a list filtered by id)."""
    if not resource.company_level and project_id is None:
        raise MissingProject(f"{resource.name} {resource_id} has no project_id")
    return resource.show.format(id=resource_id, company_id=company_id, project_id=project_id)


def list_paths(resource: ResourceType, *, company_id: int, project_id: int | None) -> list[str]:
    return [p.format(company_id=company_id, project_id=project_id) for p in resource.lists]


def unwrap(resource: ResourceType, answer: Any, resource_id: int | None = None) -> Any:
    """The object (or list) inside an answer: v2.0's `data` envelope removed; for a
    `show_by_list` type, the listed item with the wanted id (None: not listed)."""
    if resource.envelope is Envelope.DATA and isinstance(answer, dict):
        answer = answer.get("data")
    if resource.show_by_list and resource_id is not None:
        if not isinstance(answer, list):
            return None
        return next(
            (
                item
                for item in answer
                if isinstance(item, dict) and id_of(item.get(resource.id_field)) == resource_id
            ),
            None,
        )
    return answer


def write_path(
    call: WriteCall, *, resource_id: int | None, company_id: int, project_id: int | None
) -> str:
    """The path of a write call (`{id}` is the resource written; absent for creates)."""
    return call.path.format(id=resource_id, company_id=company_id, project_id=project_id)


def write_body(
    call: WriteCall, fields: Mapping[str, Any] | None, *, company_id: int, project_id: int | None
) -> dict[str, Any] | None:
    """A plain create or update's body: the scope keys, and the fields under the wrapper."""
    if call.wrapper is None:
        return None
    body = _scope_keys(call, company_id, project_id)
    body[call.wrapper] = dict(fields or {})
    return body


def sync_body(
    call: WriteCall, items: Iterable[Mapping[str, Any]], *, company_id: int, project_id: int | None
) -> dict[str, Any]:
    """A sync call's body: the scope keys and `updates`, one item per resource."""
    body = _scope_keys(call, company_id, project_id)
    body["updates"] = [dict(item) for item in items]
    return body


def lookup_path(lookup: Lookup, value: str, *, company_id: int, project_id: int | None) -> str:
    return lookup.path.format(
        value=quote(value, safe=""), company_id=company_id, project_id=project_id
    )


def _scope_keys(call: WriteCall, company_id: int, project_id: int | None) -> dict[str, Any]:
    scope = {"company_id": company_id, "project_id": project_id}
    return {key: scope[key] for key in call.scope_in_body}


def markdown_table() -> str:
    """The registry as the README shows it (a test keeps the two equal)."""
    rows = [
        "| resource (webhook name) | level | events subscribed | lists | OpenAPI |",
        "|---|---|---|---|---|",
    ]
    for kind in _TYPES:
        events = ", ".join(e for e in EVENT_TYPES if e in kind.subscribed_events())
        notes: list[str] = []
        if len(kind.lists) > 1:
            notes.append("active + inactive")
        if "by_status" in "".join(kind.lists):
            notes.append("every status")
        if kind.window is not None:
            notes.append("day ranges")
        if kind.show_by_list:
            notes.append("shown by list id")
        if kind.parent is not None:
            notes.append(f"refreshes its {kind.parent}")
        if kind.deprecated is not None:
            gone = ", ".join(sorted(kind.deprecated.event_types))
            notes.append(f"{gone} served by {kind.deprecated.replacement}")
        rows.append(
            f"| {kind.name} | {kind.level.value} | {events} | {'; '.join(notes) or '-'} "
            f"| `{kind.operations[0]}` |"
        )
    return "\n".join(rows)


def writes_markdown_table() -> str:
    """The types written back, as the README shows them (a test keeps the two equal)."""
    rows = [
        "| resource | level | create, update | delete | lost create answer | OpenAPI |",
        "|---|---|---|---|---|---|",
    ]
    for kind in _TYPES:
        writes = kind.writes
        if writes is None:
            continue
        if writes.sync is not None:
            upsert, lost = "sync action, by `origin_id`", "re-sent safely (idempotent)"
        else:
            upsert = "one call each"
            lost = (
                f"looked up by `{writes.lookup.field}`"
                if writes.lookup is not None
                else "parked `in_doubt` for an operator"
            )
        delete = "yes" if writes.delete is not None else "-"
        ops = ", ".join(f"`{op}`" for op in writes.operations)
        rows.append(f"| {kind.name} | {kind.level.value} | {upsert} | {delete} | {lost} | {ops} |")
    return "\n".join(rows)
