"""Background jobs: the transactional outbox, the Dramatiq broker and actors, and the scheduler."""
