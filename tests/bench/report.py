"""The printed table and the JSON file of a bench run."""

import json
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.5
LEGEND = (
    "server CPU ms/req: CPU time of the uvicorn process (its database threads included) per request; "
    "client CPU: the share of one core the bench process used, near 100% would mean the client set the pace"
)


def ratio_of(load: dict[str, dict[str, Any]]) -> dict[str, Any]:
    graphql, plain = load["graphql"], load["plain"]
    ratio = graphql["requests_per_second"] / plain["requests_per_second"]
    cpu_ratio = None
    if graphql["server_cpu_ms_per_request"] and plain["server_cpu_ms_per_request"]:
        cpu_ratio = round(plain["server_cpu_ms_per_request"] / graphql["server_cpu_ms_per_request"], 3)
    return {
        "graphql_over_plain_requests_per_second": round(ratio, 3),
        "plain_over_graphql_server_cpu_per_request": cpu_ratio,
        "target": f"GraphQL >= {TARGET_RATIO}x the plain endpoint",
        "target_met": ratio >= TARGET_RATIO,
    }


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def format_backend(title: str, result: dict[str, Any]) -> str:
    config, load, ratio, statements = result["config"], result["load"], result["ratio"], result["sql_statements"]
    lines = [
        f"== {title}: {config['customers']:,} customers, customers(first: {config['page_size']}), "
        f"{config['requests']:,} requests per endpoint at concurrency {config['concurrency']} "
        f"(after {config['warmup']} warm-up), {config['rounds']} alternating rounds",
        "",
        f"  {'endpoint':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'server CPU ms/req':>19}"
        f"{'client CPU':>12}",
    ]
    for name in ("graphql", "plain"):
        row = load[name]
        cpu = row["server_cpu_ms_per_request"]
        lines.append(
            f"  {name:<10}{row['requests_per_second']:>9.1f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['mean_ms']:>9.2f}{cpu if cpu is not None else 'n/a':>19}{row['client_cpu_share']:>12.0%}"
        )
    lines += [
        f"  ({LEGEND})",
        "",
        f"  ratio graphql/plain (req/s): {ratio['graphql_over_plain_requests_per_second']:.3f}x   "
        f"target >= {TARGET_RATIO}x: {verdict(ratio['target_met'])}",
    ]
    cpu_ratio = ratio["plain_over_graphql_server_cpu_per_request"]
    if cpu_ratio is not None:
        lines.append(f"  the same by server CPU per request (plain/graphql): {cpu_ratio:.3f}x")
    sizes = statements["page_sizes"]
    lines += [
        "",
        "  SQL statements per request (first page / page after a cursor)",
        f"  {'page size':<10}" + "".join(f"{size:>8}" for size in sizes),
    ]
    for name in ("graphql", "plain"):
        counts = statements["counts"][name]
        cells = "".join(f"{counts[str(size)]['first']:>6}/{counts[str(size)]['after']}" for size in sizes)
        lines.append(f"  {name:<10}{cells}")
    lines += [
        f"  target ({statements['target']}): {verdict(statements['target_met'])}",
        f"  ({statements['note']})",
        "  GraphQL statements for one request:",
        *(f"    {statement}" for statement in statements["statements_at_largest_page_after_cursor"]["graphql"]),
    ]
    return "\n".join(lines)


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
