"""`churnsaver synthetic events|customers-csv`: synthetic data files for trials and benchmarks.

The files are what the imports read: `churnsaver import events FILE.jsonl --tenant SLUG` loads the
events, `churnsaver import customers FILE.csv --tenant SLUG --label-column Churn
--churn-date-column churn_date` the CRM export.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, fail, print_json
from churnsaver.backend.synthetic import crm_export_csv, generate
from churnsaver.backend.synthetic.crm_export import CHURN_DATE_COLUMN, LABEL_COLUMN

synthetic_app = Typer(help="Write synthetic data files (events, CRM exports).", no_args_is_help=True)

OutputOption = Annotated[Path, typer.Option("--output", help="The file to write.", show_default=False)]
SeedOption = Annotated[int, typer.Option(min=0, help="The same seed writes the same file.")]


@synthetic_app.command("events")
def events(
    output: OutputOption,
    customers: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many customers.")] = 1000,
    months: Annotated[int, typer.Option(min=1, max=60, help="Months of history, ending today.")] = 9,
    seed: SeedOption = 1,
    as_json: JsonOption = False,
) -> None:
    """Events-API items of synthetic customers, one JSON object per line (JSON Lines)."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        with output.open("w", encoding="utf-8") as file:
            dataset = generate(seed, customers, end - timedelta(days=round(months * 30.44)), end)
            for item in dataset.items:
                file.write(json.dumps(item, separators=(",", ":")) + "\n")
    except OSError as error:
        fail(f"{output}: {error.strerror}")
    churned = len(dataset.churned)
    if as_json:
        print_json({"output": str(output), "events": len(dataset.items), "customers": customers, "churned": churned})
        return
    console.print(
        f"wrote {len(dataset.items):,} events of {customers:,} customers ({churned:,} churned) to {output}",
        highlight=False,
    )


@synthetic_app.command("customers-csv")
def customers_csv(
    output: OutputOption,
    rows: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many customers.")] = 5000,
    seed: SeedOption = 1,
    as_json: JsonOption = False,
) -> None:
    """A CRM/billing export with a churn label, blanks and mixed columns, as CSV."""
    try:
        export = crm_export_csv(output, seed, rows)
    except OSError as error:
        fail(f"{output}: {error.strerror}")
    if as_json:
        print_json({"output": str(output), "rows": export.rows, "churned": export.churned})
        return
    console.print(f"wrote {export.rows:,} customers ({export.churned:,} churned) to {output}", highlight=False)
    console.print(
        f"import it with: churnsaver import customers {output} --tenant SLUG "
        f"--label-column {LABEL_COLUMN} --churn-date-column {CHURN_DATE_COLUMN}",
        highlight=False,
        soft_wrap=True,
    )
