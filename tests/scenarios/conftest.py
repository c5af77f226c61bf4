"""Scenario tests reuse the pipeline's simulator fixtures (one simulator per session)."""

from __future__ import annotations

from tests.pipeline.conftest import pipeline_settings, sim, simulator

__all__ = ["pipeline_settings", "sim", "simulator"]
