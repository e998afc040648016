"""Campaigns benchmarks: due steps to an SMTP server, and a hard-decline webhook to its first email."""
