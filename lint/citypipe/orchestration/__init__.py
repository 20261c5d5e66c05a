"""Dagster: assets, checks, schedules and sensors over the core."""
