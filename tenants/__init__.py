"""Tenants, their API keys and the auth subject: who is acting, for which tenant, allowed to do what."""
