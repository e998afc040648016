"""The ingest benchmark: durable webhooks, the events API and CSV imports (`python -m tests.bench ingest`)."""
