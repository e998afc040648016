"""Traits as features: CRM exports with mixed text/number columns and blanks need no preprocessing."""

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from churnsaver.backend.ingest.imports import CustomerColumns, import_customers
from churnsaver.backend.risk.features import MISSING_CATEGORY, discover_spec, feature_matrix
from churnsaver.backend.risk.traits import is_numeric_trait, trait_category, trait_number
from tests.risk.events import apply, customer_ids, identify

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
CRM_EXPORT = """customer_id,seats,region,revenue,vip,notes
a1,3,EU,"1,200.50",true,
a2,5,US,900,false,call back
a3,,EU,,true,
a4,N/A,3,450.25,,
a5,12,,300,false,
a6,unknown,US,1000,true,
a7,4,EU,800,false,
a8,6,US,700,true,
a9,8,EU,650,false,
a10,10,US,600,true,
a11,7,EU,500,false,
a12,9,US,550,true,
"""


async def test_a_mixed_crm_export_becomes_typed_features(db, tenant, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(CRM_EXPORT)
    await import_customers(db, tenant.id, path, CustomerColumns(), on_progress=lambda _: None)
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec)

    assert {"trait.seats", "trait.revenue"} <= set(spec.numeric)  # 1 stray "unknown" in 10 present values
    assert {"trait.region", "trait.vip", "trait.notes"} <= set(spec.categorical)
    frame = matrix.frame.set_index([matrix.customer_ids])
    assert frame.loc[ids["a1"], "trait.revenue"] == 1200.5
    assert frame.loc[ids["a2"], "trait.seats"] == 5.0
    for blank in ("a3", "a4", "a6"):
        assert math.isnan(frame.loc[ids[blank], "trait.seats"])
    assert frame.loc[ids["a4"], "trait.region"] == "3"  # a number in a text column is a category
    assert frame.loc[ids["a5"], "trait.region"] == MISSING_CATEGORY
    assert frame.loc[ids["a1"], "trait.vip"] == "true" and frame.loc[ids["a4"], "trait.vip"] == MISSING_CATEGORY
    assert frame["trait.seats"].dtype == float and frame["trait.region"].map(type).eq(str).all()


async def test_identify_traits_of_any_json_type_are_typed_the_same_way(db, tenant) -> None:
    traits = [
        {"seats": 3, "tier": "gold"},
        {"seats": "7", "tier": 2},
        {"seats": 2.5, "tier": None},
        {"seats": None, "tier": ""},
    ]
    await apply(db, tenant.id, [identify(f"u{n}", AS_OF, f"id-{n}", **t) for n, t in enumerate(traits)])
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec, [ids[f"u{n}"] for n in range(4)])
    assert "trait.seats" in spec.numeric and "trait.tier" in spec.categorical
    seats = matrix.frame["trait.seats"].tolist()
    assert seats[:3] == [3.0, 7.0, 2.5] and math.isnan(seats[3])
    assert matrix.frame["trait.tier"].tolist() == ["gold", "2", MISSING_CATEGORY, MISSING_CATEGORY]


@pytest.mark.parametrize(
    ("values", "numeric"),
    [
        ([1, 2, "3", None, ""], True),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, "n/a", "unknown"], True),  # one stray text in ten present values
        ([1, "a", "b"], False),
        ([True, False], False),  # booleans are categories
        (["02134", "10001"], False),  # codes with leading zeros are not quantities
        ([None, "", "NA"], None),  # nothing present: no feature at all
    ],
)
def test_a_trait_is_numeric_when_nearly_all_present_values_are_numbers(values, numeric) -> None:
    assert is_numeric_trait(values) is numeric


def test_values_convert_to_one_number_or_one_category() -> None:
    assert trait_number("1,234.5") == 1234.5 and math.isnan(trait_number("abc")) and math.isnan(trait_number(True))
    assert math.isnan(trait_number(float("inf")))
    assert [trait_category(value) for value in (3, 3.0, "3", " EU ", 2.5, False, None, " ")] == [
        "3",
        "3",
        "3",
        "EU",
        "2.5",
        "false",
        MISSING_CATEGORY,
        MISSING_CATEGORY,
    ]


async def test_a_text_trait_unique_to_every_customer_is_an_identifier_not_a_feature(db, tenant) -> None:
    events = [identify(f"u{n}", AS_OF, f"id-{n}", account_ref=f"ACC-{n:05d}", tier=f"t{n % 3}") for n in range(60)]
    await apply(db, tenant.id, events)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
    assert "trait.tier" in spec.categorical
    assert "trait.account_ref" not in spec.columns
