"""Scenario tests share the pipeline's fixtures: the simulator, its control client, settings."""

from tests.pipeline.conftest import pipeline_settings, sim, simulator

__all__ = ["pipeline_settings", "sim", "simulator"]
