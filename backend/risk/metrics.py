"""How well churn probabilities fit outcomes: the figures stored with every model version.

Plain numpy (no scikit-learn), matching scikit-learn's definitions: ROC-AUC counts tied scores
as half, average precision is the step-wise area of the precision-recall curve over distinct
thresholds, and top-decile lift compares the churn rate of the highest-scored tenth of rows
with the overall rate.
"""

import math
from typing import Any

import numpy as np
from scipy.stats import rankdata

CALIBRATION_BINS = 10
PROBABILITY_FLOOR = 1e-15  # log loss of a confident miss is large, never infinite


def _checked(labels: Any, probabilities: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("labels and probabilities must be 1-d arrays of the same length")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, p


def roc_auc(labels: Any, probabilities: Any) -> float | None:
    """The chance a random churner outranks a random non-churner; None with only one class."""
    y, p = _checked(labels, probabilities)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(p)  # ties get their average rank: a tie counts half
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(labels: Any, probabilities: Any) -> float | None:
    """PR-AUC as the sum over thresholds of precision times the recall gained; None without churners."""
    y, p = _checked(labels, probabilities)
    positives = y.sum()
    if positives == 0:
        return None
    order = np.argsort(-p, kind="mergesort")
    y_sorted, p_sorted = y[order], p[order]
    # One point per distinct score: rows tied on a score enter the curve together.
    last_of_each_score = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]
    true_positives = np.cumsum(y_sorted)[last_of_each_score]
    flagged = last_of_each_score + 1
    precision = true_positives / flagged
    recall_gained = np.diff(np.r_[0.0, true_positives]) / positives
    return float((precision * recall_gained).sum())


def log_loss(labels: Any, probabilities: Any) -> float:
    y, p = _checked(labels, probabilities)
    p = np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def brier_score(labels: Any, probabilities: Any) -> float:
    y, p = _checked(labels, probabilities)
    return float(((p - y) ** 2).mean())


def top_decile_lift(labels: Any, probabilities: Any) -> float | None:
    """Churn rate among the highest-scored tenth (rounded up) over the overall rate; None without churners."""
    y, p = _checked(labels, probabilities)
    if len(y) == 0 or y.sum() == 0:
        return None
    top = math.ceil(len(y) / 10)
    order = np.argsort(-p, kind="mergesort")
    return float(y[order[:top]].mean() / y.mean())


def calibration_table(labels: Any, probabilities: Any, bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Predicted against observed churn in equal-width probability bins (the last bin includes 1.0).

    Every bin is listed, empty ones with count 0 and null rates, so tables of two models line up.
    """
    y, p = _checked(labels, probabilities)
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    table = []
    for number in range(bins):
        members = index == number
        count = int(members.sum())
        table.append(
            {
                "lower": number / bins,
                "upper": (number + 1) / bins,
                "count": count,
                "mean_predicted": float(p[members].mean()) if count else None,
                "observed_rate": float(y[members].mean()) if count else None,
            }
        )
    return table


def evaluate(labels: Any, probabilities: Any) -> dict[str, Any]:
    """Every stored metric of `probabilities` against the 0/1 `labels`, as JSON-ready values."""
    y, p = _checked(labels, probabilities)
    return {
        "rows": len(y),
        "positives": int(y.sum()),
        "roc_auc": roc_auc(y, p),
        "pr_auc": average_precision(y, p),
        "log_loss": log_loss(y, p) if len(y) else None,
        "brier": brier_score(y, p) if len(y) else None,
        "top_decile_lift": top_decile_lift(y, p),
        "calibration": calibration_table(y, p),
    }
