"""The risk domain in GraphQL: its types, queries and mutations."""
