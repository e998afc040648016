"""The campaigns part of the GraphQL API: campaigns, their steps and variants, and their mutations."""
