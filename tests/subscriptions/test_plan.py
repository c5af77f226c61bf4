"""The pure plans: a company's hooks → changes; a resync's parts, pages and writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.resync import plan as resync_plan
from app.subscriptions.plan import (
    AddTrigger,
    CreateHook,
    DeleteHook,
    DesiredHook,
    HookState,
    RemoveTrigger,
    Trigger,
    UpdateHook,
    desired_hook,
    fingerprint,
    plan,
)

DESIRED = desired_hook(
    namespace="procore-hooks",
    public_base_url="https://hooks.example.test/",
    authorization="token-1",
    resources=["RFIs", "Submittals"],
)


def in_step(hook_id: int = 7, **overrides: object) -> HookState:
    values: dict[str, object] = {
        "id": hook_id,
        "namespace": "procore-hooks",
        "destination_url": "https://hooks.example.test/webhooks/procore",
        "api_version": "v2.0",
        "destination_headers": {"Authorization": "token-1"},
        "triggers": tuple(
            Trigger(r, e, n) for n, (r, e) in enumerate(sorted(DESIRED.triggers), start=100)
        ),
    }
    values.update(overrides)
    return HookState(**values)  # type: ignore[arg-type]


def test_no_hook_of_ours_creates_one_with_every_trigger() -> None:
    foreign = in_step(1, namespace="someone-else")
    made = plan(DESIRED, [foreign])
    assert made.kept is None
    assert made.changes[0] == CreateHook()
    assert {
        (c.resource_name, c.event_type) for c in made.changes[1:] if isinstance(c, AddTrigger)
    } == set(DESIRED.triggers)
    assert len(made.changes) == 1 + 6


def test_a_hook_in_step_needs_nothing() -> None:
    assert plan(DESIRED, [in_step(), in_step(1, namespace="other")]).changes == ()


def test_headers_not_shown_are_judged_by_the_applied_fingerprint() -> None:
    hidden = in_step(destination_headers=None)
    assert plan(DESIRED, [hidden], fingerprint("token-1")).changes == ()
    assert plan(DESIRED, [hidden], fingerprint("token-0")).changes == (
        UpdateHook(7, {"destination_headers": {"Authorization": "token-1"}}),
    )
    assert plan(DESIRED, [hidden], None).changes[0] == UpdateHook(
        7, {"destination_headers": {"Authorization": "token-1"}}
    )


def test_rotation_new_url_and_disabled_are_one_patch() -> None:
    stale = in_step(
        destination_url="https://old.example.test/webhooks/procore",
        destination_headers={"Authorization": "token-0"},
        status="disabled",
    )
    made = plan(DESIRED, [stale])
    assert made.changes == (
        UpdateHook(
            7,
            {
                "destination_url": "https://hooks.example.test/webhooks/procore",
                "destination_headers": {"Authorization": "token-1"},
                "status": "active",
            },
            reenable=True,
        ),
    )
    assert made.reenables == 1


def test_extra_and_duplicate_triggers_go_and_missing_ones_come() -> None:
    triggers = (
        Trigger("RFIs", "create", 1),
        Trigger("RFIs", "create", 2),
        Trigger("Punch Items", "update", 3),
    )
    made = plan(DESIRED, [in_step(triggers=triggers)])
    assert RemoveTrigger(7, 2) in made.changes
    assert RemoveTrigger(7, 3) in made.changes
    adds = {(c.resource_name, c.event_type) for c in made.changes if isinstance(c, AddTrigger)}
    assert adds == set(DESIRED.triggers) - {("RFIs", "create")}


def test_of_several_hooks_of_ours_the_one_delivering_here_stays() -> None:
    wrong = in_step(3, destination_url="https://old.example.test/x")
    right = in_step(9)
    made = plan(DESIRED, [wrong, right])
    assert made.kept == 9
    assert made.changes == (DeleteHook(3),)


hook_states = st.builds(
    HookState,
    id=st.integers(1, 50),
    namespace=st.sampled_from(["procore-hooks", "someone-else", "third"]),
    destination_url=st.sampled_from(["https://hooks.example.test/webhooks/procore", "https://x"]),
    api_version=st.sampled_from(["v2.0", "v4.0"]),
    status=st.sampled_from(["active", "disabled"]),
    destination_headers=st.sampled_from(
        [None, {"Authorization": "token-1"}, {"Authorization": "x"}]
    ),
    triggers=st.lists(
        st.builds(
            Trigger,
            resource_name=st.sampled_from(["RFIs", "Submittals", "Projects"]),
            event_type=st.sampled_from(["create", "update", "delete"]),
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
    """What Procore would hold after the changes (a model of the API for the property)."""
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
                desired.headers,
                (),
            )
        elif isinstance(change, UpdateHook):
            h = state[change.hook_id]
            f = change.fields
            state[h.id] = HookState(
                h.id,
                h.namespace,
                f.get("destination_url", h.destination_url),
                f.get("api_version", h.api_version),
                f.get("status", h.status),
                f.get("destination_headers", h.destination_headers),
                h.triggers,
            )
        elif isinstance(change, DeleteHook):
            del state[change.hook_id]
        elif isinstance(change, AddTrigger):
            target = change.hook_id if change.hook_id is not None else new_id
            h = state[target]
            added = Trigger(change.resource_name, change.event_type, 20_000 + len(h.triggers))
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
    assert plan(DESIRED, after, applied=fingerprint("token-1")).changes == ()
    # Other namespaces are exactly as they were.
    assert [h for h in after if h.namespace != DESIRED.namespace] == [
        h for h in hooks if h.namespace != DESIRED.namespace
    ]


# --- resync ----------------------------------------------------------------------------------


def test_parts_cover_company_level_once_and_project_level_per_project() -> None:
    parts = resync_plan.plan_parts(["Projects", "RFIs", "Company Users"], [901, 900])
    assert [p.key for p in parts] == ["Projects@-", "Company Users@-", "RFIs@900", "RFIs@901"]
    only = resync_plan.plan_parts(["Projects", "RFIs"], [], project_id=902)
    assert [p.key for p in only] == ["RFIs@902"]
    assert resync_plan.plan_parts(["RFIs", "Submittals"], [1], resource_name="Submittals") == [
        resync_plan.Part("Submittals", 1)
    ]


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


def test_last_page_from_link_else_total_else_a_short_page() -> None:
    assert resync_plan.has_next_page({"link": '<x?page=2>; rel="next"'}, 1, 10, 10)
    assert not resync_plan.has_next_page({"link": '<x?page=1>; rel="first"'}, 2, 10, 10)
    assert resync_plan.has_next_page({"total": "25"}, 2, 10, 10)
    assert not resync_plan.has_next_page({"total": "20"}, 2, 10, 10)
    assert resync_plan.has_next_page(None, 1, 10, 10)
    assert not resync_plan.has_next_page({}, 1, 10, 9)


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
