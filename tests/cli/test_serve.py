"""`churnsaver serve` on the embedded default, as `make run` starts it: migrates, seeds, prints, serves."""

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from churnsaver.backend.demo import DEMO_CUSTOMERS
from tests.fixtures.server import free_port


@pytest.fixture
def served(tmp_path):
    port = free_port()
    env = {**os.environ, "CHURNSAVER_DATA_DIR": str(tmp_path), "CHURNSAVER_DEMO": "1"}
    for name in ("CHURNSAVER_DATABASE_URL", "CHURNSAVER_REDIS_URL", "CHURNSAVER_ENV"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "churnsaver.backend.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("churnsaver serve did not come up")
        yield base, process, tmp_path
    finally:
        process.terminate()
        process.wait(10)


def test_serve_seeds_the_demo_tenant_and_prints_its_key_and_urls(served):
    base, process, data_dir = served
    process.terminate()
    output = process.communicate(timeout=10)[0]

    key = re.search(r"demo API key\s+(cs_\S+)", output).group(1)
    assert f"{base}/graphql" in output
    assert f"{base}/healthz" in output
    assert key == (data_dir / "demo_api_key").read_text()


def test_the_printed_key_queries_the_demo_data(served):
    base, _process, data_dir = served
    key = (data_dir / "demo_api_key").read_text()

    response = httpx.post(
        f"{base}/graphql",
        json={"query": "{ viewer { tenant { slug } } customers(first: 5) { totalCount } }"},
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.json()["data"] == {
        "viewer": {"tenant": {"slug": "demo"}},
        "customers": {"totalCount": DEMO_CUSTOMERS},
    }
    assert (data_dir / "churnsaver.db").exists()
    assert (data_dir / "secret_key").exists()
