"""The printed tables of an ingest bench run (the JSON file holds everything they show, and more)."""

from typing import Any

from churnsaver.backend.ingest.tasks import MAX_DEFER_SECONDS

LEGEND = (
    "server CPU: the uvicorn process and its jobs process (SQLite threads included) per request and as a share of one "
    "core; client: this process; PG: PostgreSQL's processes; others: everything else on the machine"
)


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[met]


def _load_row(name: str, row: dict[str, Any], *, per_item: int = 1) -> str:
    rate = row["items_per_second"] if per_item != 1 else row["requests_per_second"]
    cpu = row["server_cpu_ms_per_request"]
    return (
        f"  {name:<28}{rate:>10,.0f}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
        f"{(f'{cpu:.3f}' if cpu is not None else 'n/a'):>9}{row['server_cpu_share']:>7.0%}"
        f"{row['client_cpu_share']:>8.0%}{row['postgres_cpu_share']:>6.0%}{row['other_processes_cpu_share']:>8.0%}"
    )


HEADER = (
    f"  {'':<28}{'per s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms':>9}{'server':>7}{'client':>8}{'PG':>6}{'others':>8}"
)


def format_webhooks(result: dict[str, Any]) -> list[str]:
    if "error" in result:
        return [f"  webhooks: FAILED: {result['error']}"]
    config, processing = result["config"], result["processing"]
    if config.get("sustained"):
        title, shape = "Sustained signed Whop v1 webhooks", "one round, after one of the bare endpoint"
    else:
        title, shape = "Signed Whop v1 webhooks", f"{config['rounds']} rounds alternating with the bare endpoint"
    lines = [
        f"  {title}: {config['deliveries']:,} after {config['warmup']:,} warm-up, concurrency "
        f"{config['concurrency']}, {config['members']:,} members, median body {config['payload_bytes_median']} B, "
        f"{shape}",
        HEADER,
        _load_row("bare Starlette endpoint", result["bare"]),
        _load_row("app, processing running", result["app"]),
    ]
    if "app_without_jobs" in result:
        lines.append(_load_row("app, jobs stopped (diagnostic)", result["app_without_jobs"]))
    group = result["app"].get("group_commit", {})
    if group.get("transactions"):
        lines.append(
            f"  group commit: {group['deliveries_per_transaction']} deliveries per transaction, "
            f"{group['commit_ms_mean']} ms per commit (mean)"
        )
    if processing.get("completed"):
        lines.append(
            f"  processing: {processing['rate_during_load_per_second']:,.0f}/s during the load"
            f"{_share_of_acks(processing, result['app'])}, all processed at most "
            f"{processing['lag_after_last_ack_seconds']} s after a round's last ack, "
            f"{processing['end_to_end_per_second']:,.0f}/s end to end"
        )
        lines += _deferred(processing, "--sustained-webhooks")
    checks = result["checks"]
    lines.append(
        f"  checks: {checks['inbox_rows']:,} in the inbox, {checks['inbox_distinct_ids']:,} distinct, "
        f"{checks['timeline_rows_of_deliveries']:,} on the timeline; stored once "
        f"{verdict(checks['every_delivery_stored_exactly_once'])}, processed once "
        f"{verdict(checks['every_delivery_processed_once'])}"
    )
    lines.append(f"  app / bare: {result['ratio']:.3f}x")
    for target, met in result["targets"].items():
        lines.append(f"  target {target}: {verdict(met)}")
    if "instructions" in result:
        lines.append(_instructions_line(result["instructions"]))
    return lines


def _share_of_acks(processing: dict[str, Any], acks: dict[str, Any]) -> str:
    rate = processing["rate_during_load_per_second"]
    return f" ({rate / acks['requests_per_second']:.0%} of the acks' rate)" if rate else ""


def _deferred(processing: dict[str, Any], longer_load: str) -> list[str]:
    """Why nothing was processed during the load, when that is why (tasks.py: acknowledgements
    first); `longer_load` says which options make a load that outlasts the wait."""
    if processing["rate_during_load_per_second"]:
        return []
    return [
        f"    (a processing job waits while deliveries keep arriving, up to {MAX_DEFER_SECONDS:g} s: a burst shorter "
        f"than that is acknowledged first and processed after; {longer_load} measures a longer one)"
    ]


def _instructions_line(result: dict[str, Any]) -> str:
    if "error" in result or "skipped" in result:
        return f"  instructions per delivery: {result.get('skipped') or 'FAILED: ' + result['error']}"
    return (
        f"  instructions per delivery (callgrind, in-process, {result['deliveries']:,} each): app {result['app']:,} "
        f"({result['deliveries_per_commit']} per group commit), bare route {result['bare']:,}; "
        f"bare / app {result['ratio']:.3f}x (repeatable to 0.1%, unlike the rates)"
    )


def format_events(result: dict[str, Any]) -> list[str]:
    if "error" in result:
        return [f"  events API: FAILED: {result['error']}"]
    config, processing = result["config"], result["processing"]
    lines = [
        f"  Events API: {config['batches']} batches of {config['batch_size']} after {config['warmup_batches']} "
        f"warm-up, concurrency {config['concurrency']} (rates in events/s; latency per batch)",
        HEADER,
        _load_row("POST /v1/events, acked", result["ack"], per_item=config["batch_size"]),
    ]
    if processing.get("completed"):
        lines.append(
            f"  processing: {processing['rate_during_load_per_second']:,.0f} events/s during the load, all "
            f"processed {processing['lag_after_last_ack_seconds']} s after the last ack, "
            f"{processing['end_to_end_per_second']:,.0f} events/s end to end"
        )
        lines += _deferred(processing, "more --event-batches")
    for target, met in result["targets"].items():
        lines.append(f"  target {target}: {verdict(met)}")
    return lines


def format_csv(result: dict[str, Any]) -> list[str]:
    if "error" in result:
        return [f"  CSV import: FAILED: {result['error']}"]
    config, imported, cli = result["config"], result["import"], result["cli"]
    lines = [
        f"  CSV import: {config['rows']:,} rows x {config['columns']} columns ({config['file_bytes'] / 1e6:.1f} MB)",
        f"  import_customers (what the command runs): {imported['rows_per_second']:>10,.0f} rows/s "
        f"({imported['seconds']} s, CPU {imported['cpu_share']:.0%} of a core in this process)",
        f"  churnsaver import customers, {cli['rows']:,} rows (wall, start-up included): "
        f"{cli['rows_per_second']:,.0f} rows/s ({cli['seconds']} s)",
    ]
    for target, met in result["targets"].items():
        lines.append(f"  target {target}: {verdict(met)}")
    return lines


def format_backend(title: str, result: dict[str, Any]) -> str:
    lines = [f"== {title}", *format_webhooks(result["webhooks"]), ""]
    lines += [*format_events(result["events"]), "", *format_csv(result["csv"])]
    if "sustained" in result["webhooks"]:
        lines += ["", *format_webhooks(result["webhooks"]["sustained"])]
    lines.append(f"  ({LEGEND})")
    return "\n".join(lines)
