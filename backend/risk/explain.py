"""Why a customer scored what it did: the top reasons, each {feature, label, direction, impact}.

For a CatBoost model the reasons come from its SHAP values. They are in log-odds and add up to
the raw margin; a merchant reads probabilities, so each row's values are scaled to add up to
`probability - base rate` instead (the base rate being the model's expected output). A reason
reads "No logins in 21 days (+0.18)": this feature moved the score up by about 0.18.

The rule-based score (`rules.py`) builds its reasons through `top_reasons` too, so both kinds
of model explain themselves the same way.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool
from scipy.special import expit

from churnsaver.backend.risk.labels import describe
from churnsaver.backend.risk.leaf_shap import leaf_shap_values

REASONS_PER_SCORE = 3
# A reason smaller than this (in probability) says nothing a merchant could act on.
MIN_IMPACT = 0.005

Reason = dict[str, Any]
Calibration = Callable[[np.ndarray], np.ndarray]  # raw margins (log-odds) -> probabilities


@dataclass(frozen=True, slots=True)
class Explained:
    probabilities: np.ndarray
    impacts: np.ndarray  # rows x features, in probability terms


def reason_text(reason: Reason) -> str:
    """'No logins in 21 days (+0.18)': how a reason reads in exports and logs."""
    return f"{reason['label']} ({reason['impact']:+.2f})"


def top_reasons(impacts: np.ndarray, frame: pd.DataFrame, limit: int = REASONS_PER_SCORE) -> list[list[Reason]]:
    """The `limit` largest impacts of each row (by size, either sign), largest first.

    `impacts` holds one column per column of `frame`, in probability terms. Selecting is
    vectorised; only the few reasons kept are turned into dicts and labelled, and a label is
    computed once per (feature, value) in the batch.
    """
    rows, columns = impacts.shape
    if rows == 0 or columns == 0:
        return [[] for _ in range(rows)]
    keep = min(limit, columns)
    size = np.abs(impacts)
    top = (
        np.argpartition(-size, keep - 1, axis=1)[:, :keep] if keep < columns else np.tile(np.arange(columns), (rows, 1))
    )
    order = np.take_along_axis(size, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    chosen = np.take_along_axis(impacts, top, axis=1)
    names = list(frame.columns)
    values = [frame[name].to_numpy() for name in names]
    labels: dict[tuple[int, Any], str] = {}
    reasons: list[list[Reason]] = []
    for row in range(rows):
        row_reasons = []
        for column, impact in zip(top[row].tolist(), chosen[row].tolist(), strict=True):
            if abs(impact) < MIN_IMPACT:
                continue
            value = _plain(values[column][row])
            key = (column, value)
            label = labels.get(key)
            if label is None:
                label = labels[key] = describe(names[column], value)
            row_reasons.append(
                {
                    "feature": names[column],
                    "label": label,
                    "direction": "up" if impact > 0 else "down",
                    "impact": round(impact, 4),
                }
            )
        reasons.append(row_reasons)
    return reasons


def shap_scores(model: CatBoostClassifier, pool: Pool, to_probability: Calibration = expit) -> Explained:
    """Probabilities and per-feature contributions in probability terms from one SHAP pass
    (`leaf_shap.py`: CatBoost's exact values, at about the cost of a prediction).

    A row's SHAP values add up to its raw margin minus the expected margin, so the margin, and
    through `to_probability` (the model's calibration) the probability, come with them: no
    separate predict call. Each row's contributions are scaled to add up to p - base rate, the
    base rate being the probability at the expected margin; a calibration is monotone, so every
    reason keeps its direction. Where a row's SHAP values cancel out (their sum is ~0) that ratio
    is undefined, and the slope of p at the base margin is used instead.
    """
    shap = leaf_shap_values(model, pool)
    return in_probability_terms(shap[:, :-1], shap[:, -1], to_probability)


def in_probability_terms(
    contributions: np.ndarray, expected: np.ndarray, to_probability: Calibration = expit
) -> Explained:
    """Probabilities from per-feature log-odds contributions around an expected margin, and the
    contributions scaled to add up to each row's p - base rate (see `shap_scores`)."""
    margin = contributions.sum(axis=1)
    probabilities = to_probability(expected + margin)
    base_rate = to_probability(expected)
    slope = (to_probability(expected + 1e-3) - base_rate) / 1e-3
    safe = np.abs(margin) > 1e-6
    scale = np.where(safe, (probabilities - base_rate) / np.where(safe, margin, 1.0), slope)
    return Explained(probabilities, contributions * scale[:, None])


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value a label and the JSON column expect."""
    return value.item() if isinstance(value, np.generic) else value
