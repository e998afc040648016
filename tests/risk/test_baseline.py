"""The logistic-regression baseline learns what plain features say."""

import numpy as np
import pandas as pd

from churnsaver.backend.risk import metrics
from churnsaver.backend.risk.baseline import LogisticBaseline
from churnsaver.backend.risk.features import MISSING_CATEGORY, FeatureSpec


def test_a_separable_numeric_set_is_learned():
    rng = np.random.default_rng(1)
    logins = np.r_[rng.uniform(0, 4, 200), rng.uniform(6, 10, 200)]
    labels = np.r_[np.ones(200), np.zeros(200)]  # few logins: churned
    frame = pd.DataFrame({"logins": logins})

    model = LogisticBaseline.fit(frame, FeatureSpec(("logins",), ()), labels)
    predicted = model.predict(frame)

    assert metrics.roc_auc(labels, predicted) == 1.0
    assert ((predicted > 0.5) == (labels == 1)).mean() > 0.98


def test_categories_and_missing_values_carry_their_own_weight():
    rows = 400
    plan = np.where(np.arange(rows) % 2 == 0, "monthly", "annual")
    seats = np.where(np.arange(rows) % 4 < 2, np.nan, 3.0)
    labels = ((plan == "monthly") & np.isnan(seats)).astype(float)  # churn: monthly with unknown seats
    frame = pd.DataFrame({"seats": seats, "plan": plan})
    spec = FeatureSpec(("seats",), ("plan",))

    model = LogisticBaseline.fit(frame, spec, labels)
    unseen = pd.DataFrame({"seats": [np.nan, 3.0, np.nan], "plan": ["monthly", "monthly", MISSING_CATEGORY]})
    monthly_unknown, monthly_known, other_unknown = model.predict(unseen)

    assert metrics.roc_auc(labels, model.predict(frame)) > 0.95
    assert monthly_unknown > 0.5 > monthly_known
    assert monthly_unknown > other_unknown
