"""Whop: its webhook events (v1 and v5 envelopes) as canonical events."""
