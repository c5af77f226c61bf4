"""Security at the boundary: the pipeline's simulator fixtures, shared with these tests."""

from __future__ import annotations

from tests.pipeline.conftest import pipeline_settings, prt, sim, simulator

__all__ = ["pipeline_settings", "prt", "sim", "simulator"]
