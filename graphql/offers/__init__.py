"""GraphQL for offers, redemptions, budgets and the tenant's billing connection."""
