"""The tenants domain in GraphQL: the viewer, the tenant and its API keys (types, queries, mutations)."""
