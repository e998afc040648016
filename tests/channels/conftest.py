"""Fixtures of the channels tests: a real SMTP server."""

from tests.fixtures.smtp import smtp_server

__all__ = ["smtp_server"]
