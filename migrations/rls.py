"""Row-level security for tenant tables, on PostgreSQL (a no-op elsewhere).

Every table with a `tenant_id` gets `enable_tenant_rls(table)` in the migration that creates it:
rows are visible and writable only when `churnsaver.tenant_id` (set per transaction by the app)
names their tenant; with no tenant set, no rows. FORCE makes the rule bind the table owner too.
"""

from alembic import context, op

from churnsaver.backend.core.config import Settings

CURRENT_TENANT = "NULLIF(current_setting('churnsaver.tenant_id', true), '')::uuid"


def is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def app_role() -> str:
    settings: Settings = context.config.attributes.get("settings") or Settings()
    return settings.database_role


def create_app_role() -> None:
    """The non-owner role the app's connections act as; the migrating user may switch to it."""
    if not is_postgres():
        return
    role = app_role()
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN;
            END IF;
        END $$;
        """
    )
    op.execute(f"GRANT {role} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}")


def enable_tenant_rls(table: str, *, tenant_column: str = "tenant_id") -> None:
    """Rows of `table` visible and writable only for the tenant `tenant_column` names."""
    if not is_postgres():
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({tenant_column} = {CURRENT_TENANT}) WITH CHECK ({tenant_column} = {CURRENT_TENANT})"
    )


def disable_tenant_rls(table: str) -> None:
    """Undo `enable_tenant_rls(table)` and any system policy beside it."""
    if not is_postgres():
        return
    for policy in ("tenant_isolation", "system_lookup", "system_access"):
        op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def allow_system_lookup(table: str) -> None:
    """Let the system (owner) connection read `table` across tenants, for look-ups that happen
    before a tenant is known (an API key by prefix, a webhook endpoint by its id). SELECT only."""
    if not is_postgres():
        return
    op.execute(f"CREATE POLICY system_lookup ON {table} FOR SELECT TO CURRENT_USER USING (true)")


def allow_system_access(table: str) -> None:
    """Let the system (owner) connection read and write `table` across tenants, for work that is
    no one tenant's (the scheduler, the outbox relay, the CLI's admin commands)."""
    if not is_postgres():
        return
    op.execute(f"CREATE POLICY system_access ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)")
