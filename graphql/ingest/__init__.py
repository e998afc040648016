"""The ingest domain in GraphQL: webhook endpoints and delivery counters (types, queries, mutations)."""
