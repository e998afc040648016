"""The logistic-regression baseline every CatBoost version is measured against, on the same rows.

Numeric features are standardised with the training rows' mean and spread; a missing value
becomes 0 (the mean) plus a 1 in the column's missing indicator, so "unknown" can carry its own
weight. Categorical features are one-hot encoded for levels seen at least `MIN_LEVEL_ROWS` times
(at most `MAX_LEVELS` per feature); rarer and unseen levels share the all-zero encoding. The fit
is L2-penalised log loss minimised with scipy's L-BFGS, unweighted so probabilities stay calibrated.

When it ranks the holdout better than CatBoost it is the version that scores (training.py), so
it is stored like a model (`to_blob` / `from_stored`) and explains its scores: a feature's
reason is its weight times its value's distance from the training rows' mean, in log-odds.
"""

import io
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from churnsaver.backend.risk.features import FeatureSpec

MIN_LEVEL_ROWS = 5
MAX_LEVELS = 30
L2_PENALTY = 1.0  # per row-sum of the loss; the intercept is not penalised
MAX_ITERATIONS = 500


@dataclass(frozen=True)
class Encoder:
    numeric: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    levels: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, spec: FeatureSpec) -> "Encoder":
        values = frame.loc[:, list(spec.numeric)].to_numpy(dtype=float)
        with warnings.catch_warnings():  # an all-missing column has no mean: it stays 0
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nan_to_num(np.nanmean(values, axis=0)) if len(values) else np.zeros(len(spec.numeric))
            scales = np.nan_to_num(np.nanstd(values, axis=0)) if len(values) else np.ones(len(spec.numeric))
        scales[scales == 0] = 1.0
        levels = {}
        for name in spec.categorical:
            counts = frame[name].astype(str).value_counts()
            kept = counts[counts >= MIN_LEVEL_ROWS].index[:MAX_LEVELS]
            levels[name] = tuple(sorted(kept))
        return cls(spec.numeric, means, scales, levels)

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(self.numeric, tuple(self.levels))

    def column_features(self) -> np.ndarray:
        """For each column of `transform`'s output, the index of the spec column it encodes."""
        numeric = list(range(len(self.numeric)))
        owners = numeric + numeric
        for index, kept in enumerate(self.levels.values()):
            owners += [len(self.numeric) + index] * len(kept)
        return np.asarray(owners, dtype=int)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame.loc[:, list(self.numeric)].to_numpy(dtype=float)
        missing = np.isnan(values)
        standardised = np.where(missing, 0.0, (values - self.means) / self.scales)
        blocks = [standardised, missing.astype(float)]
        for name, kept in self.levels.items():
            if kept:
                column = frame[name].astype(str).to_numpy()
                blocks.append((column[:, None] == np.asarray(kept, dtype=object)[None, :]).astype(float))
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))


@dataclass(frozen=True)
class LogisticBaseline:
    kind: ClassVar[str] = "logistic"  # its version's `kind` when it is the one that scores
    encoder: Encoder
    weights: np.ndarray
    intercept: float
    centre: np.ndarray  # the training rows' mean of each encoded column: where no reason pushes

    @classmethod
    def fit(cls, frame: pd.DataFrame, spec: FeatureSpec, labels: np.ndarray) -> "LogisticBaseline":
        encoder = Encoder.fit(frame, spec)
        x = encoder.transform(frame)
        y = np.asarray(labels, dtype=float)

        def loss_and_gradient(parameters: np.ndarray) -> tuple[float, np.ndarray]:
            weights, intercept = parameters[:-1], parameters[-1]
            margin = x @ weights + intercept
            # log(1 + e^m) - y*m, computed stably for large |m|
            loss = np.logaddexp(0.0, margin).sum() - y @ margin + 0.5 * L2_PENALTY * weights @ weights
            error = expit(margin) - y
            gradient = np.r_[x.T @ error + L2_PENALTY * weights, error.sum()]
            return float(loss), gradient

        start = np.zeros(x.shape[1] + 1)
        result = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITERATIONS})
        centre = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
        return cls(encoder, result.x[:-1], float(result.x[-1]), centre)

    @property
    def spec(self) -> FeatureSpec:
        return self.encoder.spec

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return expit(self.encoder.transform(frame) @ self.weights + self.intercept)

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each spec column's push on the log-odds (rows x columns), and per row the log-odds at
        the training mean: together they add up to each row's log-odds."""
        pushes = (self.encoder.transform(frame) - self.centre) * self.weights
        per_feature = np.zeros((len(frame), len(self.spec.columns)))
        np.add.at(per_feature.T, self.encoder.column_features(), pushes.T)
        return per_feature, np.full(len(frame), self.intercept + self.centre @ self.weights)

    def to_blob(self) -> bytes:
        archive = io.BytesIO()
        np.savez(
            archive,
            means=self.encoder.means,
            scales=self.encoder.scales,
            centre=self.centre,
            weights=self.weights,
            intercept=np.asarray([self.intercept]),
        )
        return archive.getvalue()

    def spec_json(self) -> dict[str, Any]:
        return {**self.spec.to_json(), "levels": {name: list(kept) for name, kept in self.encoder.levels.items()}}

    @classmethod
    def from_stored(cls, blob: bytes, spec_json: dict[str, Any]) -> "LogisticBaseline":
        spec = FeatureSpec.from_json(spec_json)
        levels = {name: tuple(spec_json["levels"][name]) for name in spec.categorical}
        with np.load(io.BytesIO(blob)) as archive:
            encoder = Encoder(spec.numeric, archive["means"], archive["scales"], levels)
            return cls(encoder, archive["weights"], float(archive["intercept"][0]), archive["centre"])
