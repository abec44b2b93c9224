"""Ingestion and serving: records, per-series state, the loop, scenarios, metrics, config and the CLI."""
