"""deploy/prometheus/alerts.yml: well formed, and every metric it names is one we export.

PyYAML is not a dependency of ours; it is installed here as part of uvicorn[standard]."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import yaml
from prometheus_client import REGISTRY

from app import metrics

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"

REQUIRED = {
    "ProcoreHooksGateParkedForLong",
    "ProcoreHooksDeadEventsIncreasing",
    "ProcoreHooksLagP99High",
    "ProcoreHooks4xxStorm",
    "ProcoreHooksQueueBacklog",
    "ProcoreHooksNoWorkerHeartbeat",
}


def exported_names() -> set[str]:
    assert metrics.EVENTS_RECEIVED is not None  # importing app.metrics registers everything
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("procore_hooks_"):
            names.update(sample.name for sample in family.samples)
            names.add(family.name)
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
            names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    found: list[dict[str, Any]] = []
    for group in document["groups"]:
        assert group["name"]
        found.extend(group["rules"])
    return found


def test_rules_are_complete_and_well_formed() -> None:
    found = rules()
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), rule["alert"]
        assert expr.count("{") == expr.count("}"), rule["alert"]


def test_rules_name_only_exported_metrics() -> None:
    exported = exported_names()
    for rule in rules():
        used = set(re.findall(r"\bprocore_hooks_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)


def test_rules_use_the_label_values_we_emit() -> None:
    text = ALERTS.read_text()
    assert 'outcome="dead"' in text
    assert 'status_class=~"401|403"' in text
    assert metrics.status_class(401) == "401"
    assert metrics.status_class(403) == "403"
    for reason in re.findall(r'reason=~"([^"]+)"', text):
        for value in reason.split("|"):
            assert value in get_args(metrics.RejectReason)
