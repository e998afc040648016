"""Stripe: its webhook events as canonical events."""
