"""Running one bench suite on every backend: the header, the per-backend loop, the JSON file."""

import argparse
import os
import platform
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.dataset import BACKENDS, available_backends
from tests.bench.report import write_json


async def run_on_backends(
    arguments: argparse.Namespace,
    *,
    benchmark: str,
    output: Path,
    bench_backend: Callable[[str, argparse.Namespace], Awaitable[dict[str, Any]]],
    format_backend: Callable[[str, dict[str, Any]], str],
) -> dict[str, Any]:
    """`bench_backend` on each backend asked for (default: every available one), each printed as
    it finishes; all of it written to `output` with the machine it ran on."""
    results: dict[str, Any] = {
        "benchmark": benchmark,
        "started_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": os.getloadavg(),
        },
        "backends": {},
    }
    backends = arguments.backend or available_backends()
    if "postgres" in backends and "postgres" not in available_backends():
        raise SystemExit("--backend postgres needs CHURNSAVER_TEST_DATABASE_URL")
    for backend in backends:
        result = await bench_backend(backend, arguments)
        results["backends"][backend] = result
        print(format_backend(BACKENDS[backend], result), end="\n\n", flush=True)
    write_json(output, results)
    print(f"results written to {output}")
    return results


def any_backend_failed(results: dict[str, Any]) -> bool:
    """Whether a benchmark run by `run_on_backends` recorded an error on any backend."""
    return any("error" in backend for backend in results["backends"].values())
