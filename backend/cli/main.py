"""Commands: serve, worker, migrate, tenant, apikey, jobs, import, ingest, synthetic, model, score, scores, cases,
messages and campaigns."""

import asyncio
import os
import signal
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, fail, print_json, run_async
from churnsaver.backend.core.config import ConfigurationError, Environment, Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.logging import configure_logging
from churnsaver.jobs.models import FailedJob
from churnsaver.tenants import service as tenants
from churnsaver.tenants.api_keys import create_api_key, parse_scopes
from churnsaver.tenants.auth import AuthSubject

# The commands of each domain, imported only when used (cli/command.py, LazyGroup).
GROUPS = {
    "import": "churnsaver.backend.cli.imports:import_app",
    "ingest": "churnsaver.backend.cli.ingest:ingest_app",
    "synthetic": "churnsaver.backend.cli.synthetic:synthetic_app",
    "model": "churnsaver.backend.cli.risk_models:model_app",
    "score": "churnsaver.backend.cli.scores:score",
    "scores": "churnsaver.backend.cli.scores:scores_app",
    "cases": "churnsaver.backend.cli.cases:cases_app",
    "messages": "churnsaver.backend.cli.messages:messages_app",
    "campaigns": "churnsaver.backend.cli.campaigns:campaigns_app",
}
app = Typer(help="Churn Saver: customer retention for subscription businesses.", no_args_is_help=True, lazy=GROUPS)
tenant_app = Typer(help="Create and list tenants.", no_args_is_help=True)
apikey_app = Typer(help="Mint API keys.", no_args_is_help=True)
jobs_app = Typer(help="Inspect background jobs.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(apikey_app, name="apikey")
app.add_typer(jobs_app, name="jobs")


def load_settings() -> Settings:
    try:
        return Settings()
    except ConfigurationError as error:
        fail(str(error))


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = load_settings()
    run_async(_migrate)(settings)
    console.print("database is up to date")


async def _migrate(settings: Settings) -> None:
    from churnsaver.backend.migrate import migrate as run_migrations

    await asyncio.to_thread(run_migrations, settings)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the API (and, without Redis, run the jobs in-process)."""
    import uvicorn

    from churnsaver.backend.app import create_app

    settings = load_settings()
    if settings.public_url is None:
        # Links in messages point here; the embedded jobs process reads the same variable.
        os.environ["CHURNSAVER_PUBLIC_URL"] = f"http://{host}:{port}"
        settings = settings.model_copy(update={"public_url": os.environ["CHURNSAVER_PUBLIC_URL"]})
    if settings.is_sqlite:
        run_async(_migrate)(settings)
    if settings.demo:
        demo = run_async(_seed_demo)(settings)
        base = f"http://{host}:{port}"
        console.print(f"\n[bold]Churn Saver[/bold] on {base}")
        console.print(f"  GraphQL console  {base}/graphql")
        console.print(f"  health           {base}/healthz   {base}/readyz")
        if settings.smtp_url is None and settings.env is not Environment.production:
            console.print(f"  captured mail    {base}/dev/mailbox")
            console.print(f"  widget demo      {base}/dev/widget-demo")
        if demo:
            console.print(f"  demo tenant      {demo.slug}")
            console.print(f"  demo API key     {demo.api_key}", soft_wrap=True)
            console.print('  try it           in the console, set header {"Authorization": "Bearer <key>"}\n')
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        ws="websockets-sansio",
        # After SIGTERM, requests still running after this are cancelled and the app shuts down.
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )


async def _seed_demo(settings: Settings):
    from churnsaver.backend.demo import seed_demo_tenant

    db = Database(settings)
    try:
        return await seed_demo_tenant(db, settings)
    finally:
        await db.dispose()


@app.command()
def worker(threads: Annotated[int, typer.Option(help="Worker threads in this process.")] = 4) -> None:
    """Run background jobs from Redis (scaled-out mode)."""
    settings = load_settings()
    if settings.embedded_jobs:
        fail("CHURNSAVER_REDIS_URL is not set: without Redis, jobs run inside `churnsaver serve`")
    configure_logging(settings.log_level)
    run_async(_work)(settings, threads)


async def _work(settings: Settings, threads: int) -> None:
    from churnsaver.backend.core.pubsub import broker_for, publishing_through
    from churnsaver.jobs.worker import running_jobs

    db = Database(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    broker = broker_for(settings)  # what the jobs publish reaches subscribers on every web process
    try:
        with publishing_through(broker):
            async with running_jobs(settings, db, consume=True, worker_threads=threads):
                console.print(f"worker running with {threads} threads; Ctrl-C to stop")
                await stop.wait()
    finally:
        broker.close()
        await db.dispose()


@tenant_app.command("create")
def tenant_create(
    name: str,
    slug: Annotated[str | None, typer.Option(help="URL-safe id; derived from the name if omitted.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant and its first API key (shown once)."""
    tenant, key = run_async(_tenant_create)(load_settings(), name, slug)
    payload = {"tenant": {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name}, "api_key": key}
    if as_json:
        print_json(payload)
        return
    console.print(f"created tenant [bold]{tenant.slug}[/bold] ({tenant.id})")
    console.print(f"API key (shown once): {key}", soft_wrap=True)


async def _tenant_create(settings: Settings, name: str, slug: str | None):
    db = Database(settings)
    try:
        tenant_id = tenants.new_tenant_id()
        async with db.tenant_unit_of_work(tenant_id) as session:
            tenant = await tenants.create_tenant(session, tenant_id, name=name, slug=slug)
            key = await create_api_key(session, AuthSubject.system(tenant_id), name="default")
        return tenant, key.plaintext
    finally:
        await db.dispose()


@tenant_app.command("list")
def tenant_list(as_json: JsonOption = False) -> None:
    """List tenants."""
    rows = run_async(_tenant_list)(load_settings())
    if as_json:
        print_json([{"id": str(t.id), "slug": t.slug, "name": t.name, "created_at": t.created_at} for t in rows])
        return
    table = Table("slug", "name", "id", "created")
    for t in rows:
        table.add_row(t.slug, t.name, str(t.id), t.created_at.isoformat(timespec="seconds"))
    console.print(table)


async def _tenant_list(settings: Settings):
    db = Database(settings)
    try:
        async with db.system_session() as session:
            return await tenants.list_tenants(session)
    finally:
        await db.dispose()


@apikey_app.command("create")
def apikey_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant's slug.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    scope: Annotated[list[str] | None, typer.Option(help="read and/or write (repeatable); both by default.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Mint an API key for a tenant (shown once)."""
    settings = load_settings()
    key = run_async(_apikey_create)(settings, tenant, name, scope)
    if as_json:
        print_json({"api_key": key.plaintext, "id": str(key.record.id), "scopes": key.record.scopes})
        return
    console.print(f"API key for {tenant} (shown once): {key.plaintext}", soft_wrap=True)


async def _apikey_create(settings: Settings, slug: str, name: str, scopes: list[str] | None):
    parse_scopes(scopes)
    db = Database(settings)
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        async with db.tenant_unit_of_work(tenant.id) as session:
            return await create_api_key(session, AuthSubject.system(tenant.id), name=name, scopes=scopes)
    finally:
        await db.dispose()


@jobs_app.command("failed")
def jobs_failed(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50, as_json: JsonOption = False
) -> None:
    """List dead-lettered jobs: those that ran out of retries."""
    rows = run_async(_jobs_failed)(load_settings(), limit)
    if as_json:
        print_json(
            [
                {
                    "job": r.actor_name,
                    "message_id": r.message_id,
                    "retries": r.retries,
                    "error": r.error,
                    "failed_at": r.failed_at,
                    "kwargs": r.kwargs,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        console.print("no failed jobs")
        return
    table = Table("failed at", "job", "retries", "error")
    for r in rows:
        table.add_row(r.failed_at.isoformat(timespec="seconds"), r.actor_name, str(r.retries), r.error)
    console.print(table)


async def _jobs_failed(settings: Settings, limit: int):
    db = Database(settings)
    try:
        async with db.system_session() as session:
            statement = select(FailedJob).order_by(FailedJob.failed_at.desc()).limit(limit)
            return list((await session.execute(statement)).scalars())
    finally:
        await db.dispose()


def main() -> None:
    app()
