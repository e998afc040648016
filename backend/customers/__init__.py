"""Customers: the end customers of a tenant, their profile, traits and subscription state."""
