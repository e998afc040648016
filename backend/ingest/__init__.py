"""Ingest: webhooks (Whop, Stripe), the events API and imports, turned into customers,
subscriptions and timelines. Every delivery is verified, stored before it is acknowledged,
processed at least once and applied idempotently, in event-time order."""
