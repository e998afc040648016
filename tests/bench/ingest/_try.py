import asyncio, json, sys, tempfile
from pathlib import Path
from tests.bench.ingest.webhooks import WebhookConfig, bench_webhooks
from tests.fixtures.databases import migrated_settings, drop_postgres_database, POSTGRES_URL

async def main():
    backend = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    with tempfile.TemporaryDirectory() as d:
        settings, pg = await migrated_settings(backend, Path(d))
        try:
            r = await bench_webhooks(settings, WebhookConfig(deliveries=n, warmup=500, concurrency=64, members=2000, processing=sys.argv[3] == "1"))
            print(json.dumps(r, indent=1))
        finally:
            if pg: await drop_postgres_database(POSTGRES_URL, pg)
            import shutil; shutil.copy(Path(d)/"server-ingest.log" if sys.argv[3]=="1" else Path(d)/"server-ingest-without-jobs.log", "/tmp/server-ingest.log")
asyncio.run(main())
