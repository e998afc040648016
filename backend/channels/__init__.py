"""Channels: how a message reaches a customer (email, SMS, in-app, Whop), templates, consent, signed links."""
