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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from app.procore.ids import id_of

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
    ),
    _project(
        "Work Order Contracts",
        f"{_V10}/work_order_contracts/{{id}}?project_id={{project_id}}",
        f"{_V10}/work_order_contracts?project_id={{project_id}}",
        ops=("RestV10WorkOrderContractsIdGet", "RestV10WorkOrderContractsGet"),
        category="financials",
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
