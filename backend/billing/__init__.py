"""Billing actions: an accepted offer applied on the merchant's billing system (Whop, Stripe, sandbox)."""
