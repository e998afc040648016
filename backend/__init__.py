"""Churn Saver's core: configuration, database, the HTTP app, the CLI and the domain modules."""
