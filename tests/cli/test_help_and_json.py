"""How the command line presents itself: help that reads like a command line's, and `--json` on
every command that prints a result."""

import csv
import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from churnsaver.backend.cli import app
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.risk.scoring import score_tenant
from tests.cli.test_cli import run_cli
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.risk_activity import seed_two_customers


def help_of(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], prog_name="churnsaver", env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    return result.output


def usage_of(*command: str) -> str:
    return next(line.strip() for line in help_of(*command).splitlines() if "Usage:" in line)


def commands(group: typer.core.TyperGroup, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], bool]:
    """Every group and command under `group`, named by its words, and whether it is a group."""
    found = {path: True}
    context = typer.Context(group)
    for name in group.list_commands(context):  # the root's domain groups are loaded as they are named
        command = group.get_command(context, name)
        if isinstance(command, typer.core.TyperGroup):
            found |= commands(command, (*path, name))
        else:
            found[(*path, name)] = False
    return found


EVERY_COMMAND = commands(typer.main.get_command(app))
# They print progress or serve; none prints a result a script would read.
WITHOUT_A_RESULT = {("migrate",), ("serve",), ("worker",)}


def test_usage_names_arguments_in_capitals_without_braces():
    assert usage_of("tenant", "create") == "Usage: churnsaver tenant create [OPTIONS] NAME"
    assert usage_of("import", "events") == "Usage: churnsaver import events [OPTIONS] FILE"


def test_a_flag_shows_no_value_and_an_option_with_a_value_shows_its_type():
    lines = help_of("tenant", "create").splitlines()

    [json_line] = [line for line in lines if "--json" in line]
    [slug_line] = [line for line in lines if "--slug" in line]
    assert json_line.split() == ["│", "--json", "Machine-readable", "output.", "│"]
    assert "<str>" in slug_line


def test_no_help_page_shows_a_bool_value_or_a_braced_argument():
    assert ("scores", "export") in EVERY_COMMAND and ("synthetic", "events") in EVERY_COMMAND

    for command in EVERY_COMMAND:
        assert "<bool>" not in help_of(*command), command
        assert "{" not in usage_of(*command), command


def test_every_command_that_prints_a_result_takes_json():
    for command, is_group in EVERY_COMMAND.items():
        if not is_group and command not in WITHOUT_A_RESULT:
            assert "--json" in help_of(*command), command


def test_synthetic_events_json_reports_the_file_written(tmp_path):
    output = tmp_path / "events.jsonl"

    # Writing files needs no database: run once, whatever the backends.
    result = run_cli(
        Settings(env="test", data_dir=tmp_path),
        *("synthetic", "events", "--customers", "12", "--seed", "3", "--output", str(output), "--json"),
    )

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    lines = output.read_text().splitlines()
    assert payload == {"output": str(output), "events": len(lines), "customers": 12, "churned": payload["churned"]}
    assert 0 <= payload["churned"] <= 12
    assert {json.loads(line)["customerId"] for line in lines} == {f"syn_{index:06d}" for index in range(12)}


def test_synthetic_customers_csv_json_reports_the_file_written(tmp_path):
    output = tmp_path / "crm.csv"

    result = run_cli(
        Settings(env="test", data_dir=tmp_path),
        "synthetic",
        "customers-csv",
        "--rows",
        "40",
        "--output",
        str(output),
        "--json",
    )

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert (payload["output"], payload["rows"]) == (str(output), 40)
    assert 0 < payload["churned"] < 40
    with output.open(newline="") as file:
        assert len(list(csv.DictReader(file))) == 40


async def test_scores_export_json_reports_the_file_and_its_rows(
    settings, db: Database, tenant: TenantWithKey, tmp_path: Path
):
    await seed_two_customers(db, tenant.id)
    await score_tenant(db, tenant.id)
    output = tmp_path / "scores.csv"

    result = run_cli(settings, "scores", "export", "--tenant", tenant.tenant.slug, "--output", str(output), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"output": str(output), "rows": 2}
    with output.open(newline="") as file:
        assert [row["customer_id"] for row in csv.DictReader(file)] == ["risky", "healthy"]
