"""GraphQL for channels: messages, templates, test sends and channel settings."""
