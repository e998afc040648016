"""The official GraphQL-over-HTTP audit suite (npm `graphql-http`, `serverAudits`) against the app
served by uvicorn: every audit passes, none warns."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.fixtures.databases import skip_or_fail
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.server import running_server

AUDIT_PROJECT = Path(__file__).parent / "graphql_http_audit"


def audit_results(graphql_url: str, authorization: str) -> list[dict[str, str | None]]:
    node = shutil.which("node")
    if node is None:
        skip_or_fail("the GraphQL-over-HTTP audit needs node (apt-get install nodejs)")
    if not (AUDIT_PROJECT / "node_modules" / "graphql-http").is_dir():
        skip_or_fail(f"the GraphQL-over-HTTP audit needs its packages: `npm ci` in {AUDIT_PROJECT} (make test runs it)")
    assert node is not None
    finished = subprocess.run(
        [node, "audit.mjs"],
        cwd=AUDIT_PROJECT,
        env={**os.environ, "GRAPHQL_URL": graphql_url, "GRAPHQL_AUTHORIZATION": authorization},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return [json.loads(line) for line in finished.stdout.splitlines()]


def test_the_graphql_over_http_audit_passes_without_warnings(settings, tenant: TenantWithKey):
    with running_server(settings) as base_url:
        results = audit_results(f"{base_url}/graphql", tenant.headers["Authorization"])

    not_ok = [f"{r['status']} {r['id']} {r['name']}: {r['reason']}" for r in results if r["status"] != "ok"]
    assert len(results) >= 60
    assert not_ok == []
