"""The printed table of a risk bench run (the JSON file holds everything it shows, and more)."""

from typing import Any


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def format_backend(title: str, result: dict[str, Any]) -> str:
    setup, training, batch, realtime = result["setup"], result["training"], result["batch"], result["realtime"]
    parts = batch["parts_seconds"]
    return "\n".join(
        [
            f"== {title}: {setup['customers']:,} customers, {setup['activity_rows']:,} activity rows, "
            f"{setup['state_rows']:,} state rows (written in {setup['write_seconds']} s)",
            "",
            f"  {'':<44}{'seconds':>9}{'per s':>10}  target",
            f"  {'score all customers, end to end':<44}{batch['end_to_end_seconds']:>9.2f}"
            f"{batch['customers_per_second']:>10,}  {batch['target']}: {verdict(batch['target_met'])}",
            f"  {'bare CatBoost predict_proba, same matrix':<44}{batch['bare_predict_proba_seconds']:>9.3f}"
            f"{batch['bare_customers_per_second']:>10,}",
            f"  {'  of which features (one read)':<44}{parts['features']:>9.2f}",
            f"  {'  of which SHAP probabilities + reasons':<44}{parts['shap_with_probabilities']:>9.2f}",
            f"  end to end / bare: {batch['end_to_end_over_bare_seconds']}x; model {batch['model_version']}, "
            f"{batch['stored_scores']:,} scores, {batch['history_rows']:,} history rows, "
            f"{batch['tier_changes']:,} tier events; tiers {batch['tiers']}",
            f"  real-time re-score of one customer ({realtime['samples']} samples): p50 {realtime['p50_ms']} ms, "
            f"p99 {realtime['p99_ms']} ms, max {realtime['max_ms']} ms  {realtime['target']}: "
            f"{verdict(realtime['target_met'])}",
            f"  training on {training['snapshot_rows']:,} snapshot rows ({training['features']} features): "
            f"{training['seconds']} s, {training['trees']} trees, holdout AUC {training['auc']}  "
            f"{training['target']}: {verdict(training['target_met'])}",
        ]
    )
