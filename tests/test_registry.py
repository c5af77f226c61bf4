"""The resource registry: every consumer derives from it, the README shows it as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.registry import resources
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_lists_the_registry_as_it_is() -> None:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- resources:start -->\n(.*?)\n<!-- resources:end -->", text, re.S)
    assert found, "README.md has no resources table between its markers"
    assert found.group(1) == resources.markdown_table(), (
        "README's resources table is stale: paste the output of "
        "`python -c 'from app.registry.resources import markdown_table; print(markdown_table())'`"
    )


def test_the_readme_lists_the_written_types_as_they_are() -> None:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- writes:start -->\n(.*?)\n<!-- writes:end -->", text, re.S)
    assert found, "README.md has no write-back table between its markers"
    assert found.group(1) == resources.writes_markdown_table(), (
        "README's write-back table is stale: paste the output of `python -c 'from "
        "app.registry.resources import writes_markdown_table; print(writes_markdown_table())'`"
    )


@pytest.mark.parametrize("name", resources.WRITABLE)
def test_each_written_type_says_how_each_write_is_made(name: str) -> None:
    kind = resources.REGISTRY[name]
    writes = kind.writes
    assert writes is not None
    assert writes.sync is not None or writes.create is not None, "it can be created"
    for call in (writes.create, writes.update, writes.delete, writes.sync):
        if call is None:
            continue
        assert call.method in ("POST", "PATCH", "DELETE")
        assert call.operation.endswith(call.method.capitalize())
        assert set(call.scope_in_body) <= {"company_id", "project_id"}
        if not kind.company_level:
            assert "{project_id}" in call.path or "project_id" in call.scope_in_body
    for call in (writes.update, writes.delete):
        if call is not None:
            assert "{id}" in call.path
    if writes.sync is None:
        assert writes.create is not None
        assert writes.create.wrapper is not None
        assert writes.create_requires, "a plain create names what it needs (OpenAPI required)"


def test_at_least_25_types_across_what_data_connectors_sync() -> None:
    assert len(resources.REGISTRY) >= 25
    categories = {k.category for k in resources.REGISTRY.values()}
    assert {"directory", "project management", "quality and safety", "financials", "field",
            "documents"} <= categories  # fmt: skip
    assert "Company Vendors" in resources.REGISTRY


def test_sync_resources_defaults_to_and_is_checked_against_the_registry() -> None:
    settings = Settings(_env_file=None)
    assert settings.sync_resources == list(resources.NAMES)
    chosen = Settings(_env_file=None, sync_resources="Company Vendors,RFIs")
    assert chosen.sync_resources == ["Company Vendors", "RFIs"]
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, sync_resources="RFIs,Widgets")
    assert "SYNC_RESOURCES: unknown Widgets" in str(refused.value)


@pytest.mark.parametrize("name", resources.NAMES)
def test_each_entry_is_whole(name: str) -> None:
    kind = resources.REGISTRY[name]
    assert kind.lists, "every type can be listed (resync)"
    assert "{id}" in kind.show
    assert kind.subscribed_events() <= kind.events <= resources.ALL_EVENTS
    if not kind.company_level:
        assert "{project_id}" in kind.show, "a project-level show names its project"
    if kind.parent is not None:
        assert kind.parent in resources.REGISTRY
    if kind.deprecated is not None:
        assert kind.deprecated.replacement in resources.REGISTRY


def test_a_project_level_type_without_its_project_cannot_be_shown() -> None:
    with pytest.raises(resources.MissingProject):
        resources.show_path(resources.REGISTRY["RFIs"], 1, company_id=31, project_id=None)
    assert (
        resources.show_path(
            resources.REGISTRY["Company Vendors"], 4101, company_id=31, project_id=None
        )
        == "/rest/v1.0/vendors/4101?company_id=31"
    )
