"""Fixtures of the channels tests: a real SMTP server, and local Twilio- and Whop-format servers."""

from tests.fixtures.providers import twilio, whop_api
from tests.fixtures.smtp import smtp_server

__all__ = ["smtp_server", "twilio", "whop_api"]
