"""The cases domain in GraphQL: its types, queries, mutations and the caseEvents subscription."""
