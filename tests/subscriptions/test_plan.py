"""The pure plans: a company's hooks → changes; a resync's parts, pages and writes.

Procore's Webhooks API as these plans meet it: FACTS.md §9, `plan_your_app/webhooks_api.md`
(masked `Authorization`, `v2` ≡ `v2.0`, `except` of /webhooks/resources), OpenAPI
`RestV10WebhooksHooksHookIdTriggersPost` (event types answered as CREATE|UPDATE|DELETE) and
`RestV20CompaniesCompanyIdWebhooksHooksIdPatch` (only v2.0 shows and changes `status`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.procore import pages
from app.resync import plan as resync_plan
from app.subscriptions.plan import (
    AddTrigger,
    CreateHook,
    DeleteHook,
    DesiredHook,
    Excluded,
    HookState,
    Reenable,
    RemoveTrigger,
    Trigger,
    UpdateHook,
    authorization_matches,
    desired_hook,
    fingerprint,
    normal_version,
    plan,
)

ALL = frozenset({"create", "update", "delete"})
DESIRED = desired_hook(
    namespace="procore-hooks",
    public_base_url="https://hooks.example.test/",
    authorization="token-00001",
    resources_wanted=["RFIs", "Submittals"],
    allowed={"RFIs": ALL, "Submittals": ALL},
)
APPLIED = fingerprint("token-00001")


def masked(value: str) -> dict[str, str]:
    return {"Authorization": "*****" + value[-5:]}


def in_step(hook_id: int = 7, **overrides: object) -> HookState:
    values: dict[str, object] = {
        "id": hook_id,
        "namespace": "procore-hooks",
        "destination_url": "https://hooks.example.test/webhooks/procore",
        "api_version": "v2.0",
        "status": "active",
        "destination_headers": masked("token-00001"),
        "triggers": tuple(
            Trigger(r, e, n) for n, (r, e) in enumerate(sorted(DESIRED.triggers), start=100)
        ),
    }
    values.update(overrides)
    return HookState(**values)  # type: ignore[arg-type]


def test_no_hook_of_ours_creates_one_with_every_trigger() -> None:
    foreign = in_step(1, namespace="someone-else")
    made = plan(DESIRED, [foreign], APPLIED)
    assert made.kept is None
    assert made.changes[0] == CreateHook()
    assert {
        (c.resource_name, c.event_type) for c in made.changes[1:] if isinstance(c, AddTrigger)
    } == set(DESIRED.triggers)
    assert len(made.changes) == 1 + 6


def test_a_hook_in_step_needs_nothing_as_procore_shows_it() -> None:
    assert plan(DESIRED, [in_step(), in_step(1, namespace="other")], APPLIED).changes == ()
    # "v2" is "v2.0"; CREATE is create.
    shown = in_step(
        api_version="v2",
        triggers=tuple(
            Trigger(r, e.upper(), n) for n, (r, e) in enumerate(sorted(DESIRED.triggers))
        ),
    )
    assert plan(DESIRED, [shown], APPLIED).changes == ()
    assert normal_version("v2") == normal_version("v2.0") == "v2.0"


def test_a_masked_header_matches_by_its_last_five_and_our_own_record() -> None:
    assert authorization_matches("*****00001", "token-00001", APPLIED)
    # The same last five, but we never wrote this value: set it again.
    assert not authorization_matches("*****00001", "other-00001", fingerprint("token-00001"))
    assert not authorization_matches("*****99999", "token-00001", APPLIED)
    assert not authorization_matches(None, "token-00001", None)
    assert authorization_matches(None, "token-00001", APPLIED)
    assert authorization_matches("token-00001", "token-00001", APPLIED)


def test_headers_are_set_again_when_our_record_differs() -> None:
    assert plan(DESIRED, [in_step()], fingerprint("token-0")).changes == (
        UpdateHook(7, {"destination_headers": {"Authorization": "token-00001"}}),
    )
    assert plan(DESIRED, [in_step(destination_headers=None)], None).changes[0] == UpdateHook(
        7, {"destination_headers": {"Authorization": "token-00001"}}
    )


def test_rotation_and_new_url_are_one_patch_and_disabled_is_reenabled() -> None:
    stale = in_step(
        destination_url="https://old.example.test/webhooks/procore",
        destination_headers=masked("token-00000"),
        status="disabled",
    )
    made = plan(DESIRED, [stale], fingerprint("token-00000"))
    assert made.changes == (
        UpdateHook(
            7,
            {
                "destination_url": "https://hooks.example.test/webhooks/procore",
                "destination_headers": {"Authorization": "token-00001"},
            },
        ),
        Reenable(7),
    )
    assert made.reenables == 1
    # A status nobody showed is not taken for "active", nor re-enabled blindly.
    assert plan(DESIRED, [in_step(status=None)], APPLIED).changes == ()


def test_what_procore_does_not_allow_is_not_subscribed_and_says_why() -> None:
    wanted = desired_hook(
        namespace="procore-hooks",
        public_base_url="https://hooks.example.test/",
        authorization="t",
        resources_wanted=["RFIs", "Projects", "Project Vendors"],
        allowed={"RFIs": frozenset({"create", "update"}), "Projects": ALL},
        today=date(2026, 12, 1),
    )
    assert wanted.triggers == {
        ("RFIs", "create"),
        ("RFIs", "update"),
        ("Projects", "create"),
        ("Projects", "update"),
    }
    reasons = {(x.resource_name, x.event_type): x.why for x in wanted.excluded}
    assert "except" in reasons[("RFIs", "delete")]
    # Project Vendors: its updates ended on 2026-06-30 (webhook_fanout_migration.md) and
    # Procore lists nothing for it here.
    assert set(reasons) == {
        ("RFIs", "delete"),
        ("Project Vendors", "create"),
        ("Project Vendors", "delete"),
    }
    assert all(isinstance(x, Excluded) for x in wanted.excluded)


def test_the_fanout_deprecation_drops_updates_from_the_default_subscription() -> None:
    before = desired_hook(
        namespace="n",
        public_base_url="https://x",
        authorization="t",
        resources_wanted=["Project Users", "Company Users"],
        allowed=None,
        today=date(2026, 6, 29),
    )
    after = desired_hook(
        namespace="n",
        public_base_url="https://x",
        authorization="t",
        resources_wanted=["Project Users", "Company Users"],
        allowed=None,
        today=date(2026, 6, 30),
    )
    assert ("Project Users", "update") in before.triggers
    assert ("Project Users", "update") not in after.triggers
    assert ("Company Users", "update") in after.triggers


def test_extra_and_duplicate_triggers_go_and_missing_ones_come() -> None:
    triggers = (
        Trigger("RFIs", "create", 1),
        Trigger("RFIs", "CREATE", 2),
        Trigger("Punch Items", "update", 3),
    )
    made = plan(DESIRED, [in_step(triggers=triggers)], APPLIED)
    assert RemoveTrigger(7, 2) in made.changes
    assert RemoveTrigger(7, 3) in made.changes
    adds = {(c.resource_name, c.event_type) for c in made.changes if isinstance(c, AddTrigger)}
    assert adds == set(DESIRED.triggers) - {("RFIs", "create")}
    assert made.kept_triggers == {("RFIs", "create"): 1}


def test_of_several_hooks_of_ours_the_one_delivering_here_stays() -> None:
    wrong = in_step(3, destination_url="https://old.example.test/x")
    right = in_step(9)
    made = plan(DESIRED, [wrong, right], APPLIED)
    assert made.kept == 9
    assert made.changes == (DeleteHook(3),)


hook_states = st.builds(
    HookState,
    id=st.integers(1, 50),
    namespace=st.sampled_from(["procore-hooks", "someone-else", "third"]),
    destination_url=st.sampled_from(["https://hooks.example.test/webhooks/procore", "https://x"]),
    api_version=st.sampled_from(["v2.0", "v2", "v4.0"]),
    status=st.sampled_from(["active", "disabled", None]),
    destination_headers=st.sampled_from(
        [None, masked("token-00001"), masked("x"), {"Authorization": "token-00001"}]
    ),
    triggers=st.lists(
        st.builds(
            Trigger,
            resource_name=st.sampled_from(["RFIs", "Submittals", "Projects"]),
            event_type=st.sampled_from(["create", "update", "delete", "UPDATE"]),
            id=st.integers(1, 10_000),
        ),
        max_size=8,
        # Procore's trigger ids are unique (two triggers never share one).
        unique_by=lambda t: t.id,
    ).map(tuple),
)


def apply(
    desired: DesiredHook, hooks: list[HookState], changes: tuple[object, ...]
) -> list[HookState]:
    """What Procore would show after the changes (a model of the API for the property):
    headers masked, triggers answered upper-cased."""
    state = {h.id: h for h in hooks}
    new_id = max(state, default=0) + 1
    for change in changes:
        if isinstance(change, CreateHook):
            state[new_id] = HookState(
                new_id,
                desired.namespace,
                desired.destination_url,
                desired.api_version,
                "active",
                masked(desired.authorization),
                (),
            )
        elif isinstance(change, UpdateHook):
            h = state[change.hook_id]
            f = change.fields
            headers = f.get("destination_headers")
            state[h.id] = HookState(
                h.id,
                h.namespace,
                f.get("destination_url", h.destination_url),
                f.get("api_version", h.api_version),
                h.status,
                masked(headers["Authorization"]) if headers else h.destination_headers,
                h.triggers,
            )
        elif isinstance(change, Reenable):
            h = state[change.hook_id]
            state[h.id] = HookState(
                h.id,
                h.namespace,
                h.destination_url,
                h.api_version,
                "active",
                h.destination_headers,
                h.triggers,
            )
        elif isinstance(change, DeleteHook):
            del state[change.hook_id]
        elif isinstance(change, AddTrigger):
            target = change.hook_id if change.hook_id is not None else new_id
            h = state[target]
            added = Trigger(
                change.resource_name, change.event_type.upper(), 20_000 + len(h.triggers)
            )
            state[target] = HookState(
                h.id,
                h.namespace,
                h.destination_url,
                h.api_version,
                h.status,
                h.destination_headers,
                (*h.triggers, added),
            )
        elif isinstance(change, RemoveTrigger):
            h = state[change.hook_id]
            kept = tuple(t for t in h.triggers if t.id != change.trigger_id)
            state[h.id] = HookState(
                h.id,
                h.namespace,
                h.destination_url,
                h.api_version,
                h.status,
                h.destination_headers,
                kept,
            )
    return list(state.values())


@given(st.lists(hook_states, max_size=5, unique_by=lambda h: h.id))
def test_one_plan_reaches_the_goal_and_a_second_plan_is_empty(hooks: list[HookState]) -> None:
    first = plan(DESIRED, hooks, applied=None)
    after = apply(DESIRED, hooks, first.changes)
    ours = [h for h in after if h.namespace == DESIRED.namespace]
    assert len(ours) == 1
    assert ours[0].status in ("active", None)
    assert plan(DESIRED, after, applied=APPLIED).changes == ()
    # Other namespaces are exactly as they were.
    assert [h for h in after if h.namespace != DESIRED.namespace] == [
        h for h in hooks if h.namespace != DESIRED.namespace
    ]


# --- resync ----------------------------------------------------------------------------------


TODAY = date(2026, 12, 1)


def parts(*args: Any, **kwargs: Any) -> list[resync_plan.Part]:
    return resync_plan.plan_parts(*args, today=TODAY, log_days=90, **kwargs)


def test_parts_cover_company_level_once_and_project_level_per_project() -> None:
    found = parts(["Projects", "RFIs", "Company Users"], [901, 900])
    # Company users are listed active, then inactive (FACTS.md §4: default lists are active
    # only; OpenAPI RestV10CompaniesCompanyIdUsersInactiveGet).
    assert [p.key for p in found] == [
        "Projects@-#0",
        "Company Users@-#0",
        "Company Users@-#1",
        "RFIs@900#0",
        "RFIs@901#0",
    ]
    assert resync_plan.group_ends(found) == [True, False, True, True, True]
    only = parts(["Projects", "RFIs"], [], project_id=902)
    assert [p.key for p in only] == ["RFIs@902#0"]
    assert parts(["RFIs", "Submittals"], [1], resource_name="Submittals") == [
        resync_plan.Part("Submittals", 1)
    ]


def test_dated_types_are_listed_by_day_ranges_back_to_the_horizon() -> None:
    # `tutorials/daily_logs.md`: without dates a daily-log list answers today only.
    found = parts(["Manpower Logs"], [900])
    assert [p.window for p in found] == [
        ("2026-11-01", "2026-12-01"),
        ("2026-10-01", "2026-10-31"),
        ("2026-09-03", "2026-09-30"),
    ]
    assert resync_plan.group_ends(found) == [False, False, True]
    assert resync_plan.page_path(found[0], 31, 1, 100) == (
        "/rest/v1.0/projects/900/manpower_logs?filters[status]=all"
        "&start_date=2026-11-01&end_date=2026-12-01&page=1&per_page=100"
    )
    assert list(resync_plan.day_ranges(TODAY, 1, 31)) == [("2026-12-01", "2026-12-01")]


def test_a_part_survives_its_cursor_state() -> None:
    for part in parts(["Company Users", "Work Logs"], [900]):
        assert resync_plan.Part.of_state(part.to_state()) == part
    # A cursor written before lists and windows existed is one part per type.
    assert resync_plan.Part.of_state({"resource": "RFIs", "project_id": 900, "page": 3}) == (
        resync_plan.Part("RFIs", 900)
    )


def test_page_paths_keep_their_own_query() -> None:
    part = resync_plan.Part("Punch Items", 900)
    assert (
        resync_plan.page_path(part, 31, 2, 50)
        == "/rest/v1.0/punch_items?project_id=900&page=2&per_page=50"
    )
    rfis = resync_plan.Part("RFIs", 900)
    assert (
        resync_plan.page_path(rfis, 31, 1, 100)
        == "/rest/v1.0/projects/900/rfis?page=1&per_page=100"
    )
    # Projects: every status (OpenAPI RestV10ProjectsGet, filters[by_status]=All).
    projects = resync_plan.Part("Projects", None)
    assert resync_plan.page_path(projects, 31, 1, 100) == (
        "/rest/v1.0/projects?company_id=31&filters[by_status]=All&page=1&per_page=100"
    )


def test_an_unpaginated_list_is_one_call_of_one_page() -> None:
    # OpenAPI RestV10SpecificationSectionsGet takes no page or per_page.
    part = resync_plan.Part("Specification Sections", 900)
    assert resync_plan.page_path(part, 31, 1, 100) == (
        "/rest/v1.0/specification_sections?project_id=900"
    )
    assert resync_plan.is_last_page(part, {}, 1, 100, 100)
    rfis = resync_plan.Part("RFIs", 900)
    assert not resync_plan.is_last_page(rfis, {}, 1, 100, 100)


def test_last_page_from_link_else_total_else_a_short_page() -> None:
    assert pages.has_next_page({"link": '<x?page=2>; rel="next"'}, 1, 10, 10)
    assert not pages.has_next_page({"link": '<x?page=1>; rel="first"'}, 2, 10, 10)
    assert pages.has_next_page({"total": "25"}, 2, 10, 10)
    assert not pages.has_next_page({"total": "20"}, 2, 10, 10)
    assert pages.has_next_page(None, 1, 10, 10)
    assert not pages.has_next_page({}, 1, 10, 9)


def test_only_missing_newer_or_revived_resources_are_written() -> None:
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    later = t0 + timedelta(seconds=1)
    known = {
        1: resync_plan.Known(t0, False, {"id": 1}),
        2: resync_plan.Known(t0, False, {"id": 2}),
        3: resync_plan.Known(later, False, {"id": 3}),
        4: resync_plan.Known(t0, True, None),
        6: resync_plan.Known(None, False, {"id": 6, "v": 1}),
    }
    listed: list[tuple[int, datetime | None, dict[str, Any]]] = [
        (1, t0, {"id": 1, "shape": "list"}),  # same updated_at: the show body stays
        (2, later, {"id": 2}),
        (3, t0, {"id": 3}),  # older than the mirror: webhooks already brought newer
        (4, t0, {"id": 4}),
        (5, t0, {"id": 5}),
        (6, None, {"id": 6, "v": 2}),
    ]
    assert resync_plan.to_write(listed, known) == [2, 4, 5, 6]
