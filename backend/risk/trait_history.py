"""Traits as they were at a past time, so a snapshot at t never sees an identify event after t.

A customer's traits are stored as they are now. Identify events keep what they said on the
timeline (`$state.traits`), so a snapshot at t gives every trait an identify event set after t
the value the newest identify event up to t gave it, or missing when none did (a trait first
set after t, a cancellation reason say, would otherwise tell the model the outcome). Traits no
identify event ever set (CSV imports) carry no time and keep their value.
"""

import uuid
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.events import EventType
from churnsaver.backend.customers.models import CustomerEvent
from churnsaver.backend.customers.repository import CustomerEventRepository
from churnsaver.backend.customers.timeline import STATE_KEY
from churnsaver.backend.risk.features import TRAIT_PREFIX, FeatureSpec, key_column
from churnsaver.backend.risk.traits import MISSING_CATEGORY, trait_category, trait_number

UNSET = object()  # no identify event up to t gave the trait


@dataclass
class TraitHistory:
    """Per customer key: the times of its identify events (in order) and what each said."""

    times: dict[str, list[datetime]] = field(default_factory=dict)
    said: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, tenant_id: uuid.UUID) -> "TraitHistory":
        statement = CustomerEventRepository(session, tenant_id).select_readable(
            key_column(CustomerEvent.customer_id), CustomerEvent.occurred_at, CustomerEvent.dedupe_key
        )
        statement = statement.add_columns(CustomerEvent.properties).where(CustomerEvent.type == EventType.identify)
        rows: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = defaultdict(list)
        for key, occurred_at, dedupe_key, properties in await session.execute(statement):
            traits = (properties.get(STATE_KEY) or {}).get("traits")
            if isinstance(traits, dict) and traits:
                rows[key].append((occurred_at, dedupe_key, traits))
        history = cls()
        for key, events in rows.items():
            events.sort(key=lambda event: (event[0], event[1]))
            history.times[key] = [event[0] for event in events]
            history.said[key] = [event[2] for event in events]
        return history

    def as_of(self, facts: pd.DataFrame, moment: datetime, spec: FeatureSpec) -> pd.DataFrame:
        """`facts` (indexed by customer key) with each trait column as it was at `moment`."""
        traits = {column[len(TRAIT_PREFIX) :]: column for column in spec.columns if column.startswith(TRAIT_PREFIX)}
        if not traits:
            return facts
        patched = facts.copy()
        numeric = set(spec.numeric)
        rows = patched.index.get_indexer(list(self.times))
        for key, row in zip(self.times, rows, strict=True):
            times = self.times[key]
            if row < 0 or times[-1] <= moment:
                continue
            known = bisect_right(times, moment)
            changed = {name for said in self.said[key][known:] for name in said if name in traits}
            for name in changed:
                value = next((said[name] for said in reversed(self.said[key][:known]) if name in said), UNSET)
                column = traits[name]
                if column in numeric:
                    patched.iat[row, patched.columns.get_loc(column)] = (
                        np.nan if value is UNSET else trait_number(value)
                    )
                else:
                    patched.iat[row, patched.columns.get_loc(column)] = (
                        MISSING_CATEGORY if value is UNSET else trait_category(value)
                    )
        return patched
