"""The churn risk engine: features kept at ingest, a CatBoost model per tenant, scores and reasons."""
