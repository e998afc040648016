"""The stored metrics against values worked out by hand."""

import math

import pytest

from churnsaver.backend.risk import metrics

LABELS = [0, 0, 1, 1]
SCORES = [0.1, 0.4, 0.35, 0.8]


def test_roc_auc_counts_ranked_pairs_and_ties_as_half():
    # pairs (churner, stayer): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert metrics.roc_auc(LABELS, SCORES) == pytest.approx(0.75)
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_roc_auc_is_undefined_with_one_class():
    assert metrics.roc_auc([0, 0], [0.2, 0.3]) is None


def test_average_precision_sums_precision_over_recall_steps():
    # ranked 0.8(1) 0.4(0) 0.35(1) 0.1(0): recall 1/2 at precision 1, recall 2/2 at precision 2/3
    assert metrics.average_precision(LABELS, SCORES) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_average_precision_takes_tied_scores_together():
    assert metrics.average_precision([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert metrics.average_precision([1, 0, 1], [0.9, 0.5, 0.5]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_log_loss_and_brier():
    expected = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert metrics.log_loss(LABELS, SCORES) == pytest.approx(expected)
    assert metrics.brier_score(LABELS, SCORES) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)


def test_log_loss_of_a_confident_miss_is_finite():
    assert math.isfinite(metrics.log_loss([1], [0.0]))


def test_top_decile_lift_compares_the_top_tenth_with_the_overall_rate():
    # 20 rows, 4 churners (rate 0.2); the top 2 by score hold 1 churner (rate 0.5) -> lift 2.5
    labels = [1, 0] + [1, 1, 1] + [0] * 15
    scores = [0.99, 0.98] + [0.5, 0.4, 0.3] + [0.1] * 15
    assert metrics.top_decile_lift(labels, scores) == pytest.approx(2.5)
    # fewer than ten rows: the top tenth rounds up to one row
    assert metrics.top_decile_lift(LABELS, SCORES) == pytest.approx(1 / 0.5)


def test_calibration_table_has_ten_bins_with_predicted_and_observed_rates():
    table = metrics.calibration_table([0, 1, 1, 1], [0.05, 0.15, 0.95, 1.0])

    assert [row["count"] for row in table] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert table[0] == {"lower": 0.0, "upper": 0.1, "count": 1, "mean_predicted": 0.05, "observed_rate": 0.0}
    assert table[9]["mean_predicted"] == pytest.approx(0.975)
    assert table[9]["observed_rate"] == 1.0
    assert table[4]["mean_predicted"] is None


def test_evaluate_reports_every_metric():
    report = metrics.evaluate(LABELS, SCORES)

    assert report["rows"] == 4 and report["positives"] == 2
    assert set(report) >= {"roc_auc", "pr_auc", "log_loss", "brier", "top_decile_lift", "calibration"}


def test_labels_other_than_zero_and_one_are_refused():
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.evaluate([0, 2], [0.1, 0.2])
