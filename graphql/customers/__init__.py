"""The customers domain in GraphQL: its types and queries."""
