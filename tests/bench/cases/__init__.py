"""The cases benchmark: a hard-decline webhook to its case on GraphQL (`python -m tests.bench cases`)."""
