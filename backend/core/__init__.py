"""The layer every domain stands on: settings, the database and its unit of work, errors, the
tenant-scoping repository, pagination, bulk writes, crypto, ids, logging and HTTP middleware.

Nothing here imports a domain, `tenants/`, `jobs/`, `graphql/` or `widgets/`."""
