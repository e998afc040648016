"""A synthetic CRM/billing export: the CSV a tenant uploads with `churnsaver import customers`.

It looks like the real thing on purpose: number columns with blanks, "N/A" and the odd word in
them, Yes/No columns, dates, quoted commas, a Yes/No churn label and a churn date. The label
follows a known logistic model of the attributes (contract, tenure, support load, logins,
payment method, NPS), so a model trained on the file has something to find; `bad_rows` adds
rows that an import must reject (a wrong field count, a label that is not yes/no).
"""

import csv
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

COLUMNS = [
    "customer_id",
    "company",
    "email",
    "plan",
    "contract",
    "monthly_fee",
    "total_charges",
    "tenure_months",
    "seats",
    "payment_method",
    "auto_renew",
    "support_tickets_90d",
    "logins_last_30d",
    "nps",
    "region",
    "signup_date",
    "Churn",
    "churn_date",
]
LABEL_COLUMN = "Churn"
CHURN_DATE_COLUMN = "churn_date"
PLANS = {"Starter": 29.0, "Pro": 79.0, "Business": 199.0}
CONTRACTS = [("Month-to-month", 0.55, 1.0), ("One year", 0.3, -0.2), ("Two year", 0.15, -0.9)]
PAYMENT_METHODS = [("Credit card", 0.0), ("Bank transfer", -0.1), ("PayPal", 0.1), ("Mailed check", 0.7)]
REGIONS = ["North America", "EMEA", "LATAM", "APAC"]


@dataclass(frozen=True, slots=True)
class CrmExport:
    path: Path
    rows: int  # good data rows
    churned: int  # of the good rows
    bad_lines: list[int]  # line numbers (header = 1) of the rows an import must reject


def crm_export_csv(path: Path, seed: int, rows: int, *, bad_rows: int = 0, as_of: date = date(2026, 1, 1)) -> CrmExport:
    """Write an export of `rows` customers (plus `bad_rows` broken ones, spread through the file)
    to `path`; the same seed writes the same file."""
    rng = random.Random(f"crm/{seed}")
    bad_every = rows // bad_rows if bad_rows else 0
    bad_lines: list[int] = []
    churned = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for number in range(rows):
            row, churn = _customer_row(rng, number, as_of)
            churned += churn
            writer.writerow(row)
            if bad_every and number % bad_every == bad_every - 1 and len(bad_lines) < bad_rows:
                writer.writerow(_bad_row(row, len(bad_lines)))
                bad_lines.append(number + len(bad_lines) + 3)
    return CrmExport(path=path, rows=rows, churned=churned, bad_lines=bad_lines)


def _customer_row(rng: random.Random, number: int, as_of: date) -> tuple[list[str], bool]:
    plan = rng.choices(list(PLANS), weights=[0.5, 0.35, 0.15])[0]
    contract, _, contract_risk = rng.choices(CONTRACTS, weights=[weight for _, weight, _ in CONTRACTS])[0]
    payment_method, payment_risk = rng.choice(PAYMENT_METHODS)
    tenure = max(1, int(rng.expovariate(1 / 20)))
    seats = max(1, int(rng.lognormvariate(1.6, 0.9)))
    tickets = int(rng.expovariate(1 / 1.5))
    logins = max(0, int(rng.gauss(22, 9)))
    nps = max(0, min(10, round(rng.gauss(7.5, 2))))
    logit = (
        -1.9
        + contract_risk
        + payment_risk
        - 0.035 * tenure
        + 0.3 * tickets
        - 0.06 * (logins - 22)
        - 0.18 * (nps - 7)
        + (0.3 if plan == "Starter" else 0.0)
        + rng.gauss(0, 0.5)
    )
    churn = rng.random() < 1 / (1 + math.exp(-logit))
    monthly_fee = PLANS[plan] * (1 + 0.02 * min(seats, 20))
    signup = as_of - timedelta(days=30 * tenure + rng.randint(0, 29))
    churn_date = as_of - timedelta(days=rng.randint(1, 90)) if churn and rng.random() < 0.9 else None
    company = f"{rng.choice(['Blue', 'North', 'Iron', 'Swift', 'Clear'])} {rng.choice(['Labs', 'Works', 'Media'])}"
    if rng.random() < 0.2:
        company += ", Inc."  # a quoted comma
    row = [
        f"C{number + 1:06d}",
        company,
        f"ops{number + 1}@example.com" if rng.random() > 0.05 else "",
        plan,
        contract if rng.random() > 0.03 else "",
        _blank_or(rng, f"{monthly_fee:.2f}", 0.04),
        # Billing exports leave the total blank (a space) for customers not billed yet.
        " " if tenure == 1 and rng.random() < 0.5 else f"{monthly_fee * tenure:.2f}",
        str(tenure),
        # Mostly numbers; the CRM lets people type anything.
        rng.choice(["unknown", "n/a - trial", ""]) if rng.random() < 0.04 else str(seats),
        payment_method,
        rng.choice(["Yes", "No"]) if rng.random() > 0.05 else "",
        str(tickets),
        _blank_or(rng, str(logins), 0.1),
        "N/A" if rng.random() < 0.25 else str(nps),
        rng.choice(REGIONS),
        signup.isoformat(),
        "Yes" if churn else "No",
        churn_date.isoformat() if churn_date else "",
    ]
    return row, churn


def _blank_or(rng: random.Random, value: str, blank_share: float) -> str:
    return "" if rng.random() < blank_share else value


def _bad_row(row: list[str], number: int) -> list[str]:
    """A row to be rejected: alternately missing its last field and carrying a label that is not yes/no."""
    if number % 2 == 0:
        return row[:-1]
    broken = list(row)
    broken[0] = f"BAD{number:04d}"
    broken[COLUMNS.index(LABEL_COLUMN)] = "maybe"
    return broken
