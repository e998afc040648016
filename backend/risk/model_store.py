"""The model that scores a tenant now: its stored trained version, or the cold-start rules.

A trained version is of the family that ranked its holdout best (training.py): CatBoost, the
logistic baseline (`baseline.py`, stored as its arrays and levels), or the blend of the two (the
mean of their probabilities); the row's `kind` says which.

A CatBoost version is kept as the model's own `cbm` bytes, with the leaf SHAP tables training
filled (`leaf_shap.py`) beside them in one npz archive, plus its feature spec; the spec's JSON
also holds the mapping from the raw margin to a probability (`calibration`: Platt slope and
intercept). Models trained by training.py need none (slope 1, intercept 0: no class weights), but
the mapping is stored explicitly so a model trained otherwise still scores correctly.
Deserialising is the slow part of loading, so models are cached in-process by row id: a row's
blob never changes once written, and a newly activated version has a new id.
"""

import io
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool
from scipy.special import expit
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.risk.baseline import LogisticBaseline
from churnsaver.backend.risk.features import MISSING_CATEGORY, FeatureSpec
from churnsaver.backend.risk.leaf_shap import is_symmetric, leaf_tables
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.repository import RiskModelRepository

RULES_VERSION = "rules"
CACHED_MODELS = 64
NPZ_MAGIC = b"PK\x03\x04"  # a zip archive; a cbm file starts with "CBM1"


def model_input(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Exactly `spec`'s columns in its order: numbers as float64 (NaN when missing or not a number),
    categories as text (MISSING_CATEGORY when missing). A column the frame lacks is all missing,
    so a model scores customers whose traits changed since it was trained."""
    columns: dict[str, Any] = {}
    for name in spec.numeric:
        values = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
        columns[name] = pd.to_numeric(values, errors="coerce").astype("float64")
    for name in spec.categorical:
        values = frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)
        blank = values.isna() | (values.astype(str).str.strip() == "")
        columns[name] = values.astype(str).where(~blank, MISSING_CATEGORY)
    return pd.DataFrame(columns, index=frame.index)


def catboost_pool(frame: pd.DataFrame, spec: FeatureSpec, labels: np.ndarray | None = None) -> Pool:
    return Pool(model_input(frame, spec), label=labels, cat_features=list(spec.categorical))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: calibrated probability = sigmoid(slope * raw margin + intercept)."""

    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, margin: np.ndarray) -> np.ndarray:
        return expit(self.slope * margin + self.intercept)

    def to_json(self) -> dict[str, float]:
        return {"slope": self.slope, "intercept": self.intercept}


@dataclass(frozen=True)
class CalibratedCatBoost:
    kind: ClassVar[str] = "catboost"
    model: CatBoostClassifier
    spec: FeatureSpec
    calibration: Calibration

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities, one per row of `frame` (any extra columns ignored)."""
        if len(frame) == 0:
            return np.zeros(0)
        margin = self.model.predict(catboost_pool(frame, self.spec), prediction_type="RawFormulaVal")
        return self.calibration.apply(np.asarray(margin, dtype=float))

    def to_blob(self) -> bytes:
        """An npz archive of the `cbm` bytes and the leaf SHAP tables as far as they are filled."""
        # CatBoost writes models to files only; the directory is removed with everything in it.
        with tempfile.TemporaryDirectory(prefix="churnsaver-model-") as directory:
            path = Path(directory) / "model.cbm"
            self.model.save_model(str(path), format="cbm")
            cbm = path.read_bytes()
        if not is_symmetric(self.model):
            return cbm
        archive = io.BytesIO()
        tables = leaf_tables(self.model, len(self.spec.columns)).to_array()
        np.savez(archive, cbm=np.frombuffer(cbm, dtype=np.uint8), leaf_shap=tables)
        return archive.getvalue()

    def spec_json(self) -> dict[str, Any]:
        return {**self.spec.to_json(), "calibration": self.calibration.to_json()}

    @classmethod
    def from_stored(cls, blob: bytes, spec_json: dict[str, Any]) -> "CalibratedCatBoost":
        """The model from `to_blob`'s archive, or from bare `cbm` bytes (an older version's)."""
        spec, tables = FeatureSpec.from_json(spec_json), None
        if blob.startswith(NPZ_MAGIC):
            with np.load(io.BytesIO(blob)) as archive:
                blob, tables = archive["cbm"].tobytes(), archive["leaf_shap"]
        model = CatBoostClassifier()
        model.load_model(blob=blob)
        if tables is not None:
            leaf_tables(model, len(spec.columns), tables)
        return cls(model, spec, Calibration(**spec_json.get("calibration", {})))


@dataclass(frozen=True)
class Blend:
    """The mean of CatBoost's and the baseline's probabilities, both fitted on the same rows with
    the same spec: where each ranks a part of the holdout better, their mean ranks it better
    than either (on a static table like Telco's, say)."""

    kind: ClassVar[str] = "blend"
    catboost: CalibratedCatBoost
    logistic: LogisticBaseline

    @property
    def spec(self) -> FeatureSpec:
        return self.catboost.spec

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray((self.catboost.predict(frame) + self.logistic.predict(frame)) / 2)

    def to_blob(self) -> bytes:
        archive = io.BytesIO()
        catboost, logistic = self.catboost.to_blob(), self.logistic.to_blob()
        np.savez(archive, catboost=np.frombuffer(catboost, np.uint8), logistic=np.frombuffer(logistic, np.uint8))
        return archive.getvalue()

    def spec_json(self) -> dict[str, Any]:
        return {**self.spec.to_json(), "catboost": self.catboost.spec_json(), "logistic": self.logistic.spec_json()}

    @classmethod
    def from_stored(cls, blob: bytes, spec_json: dict[str, Any]) -> "Blend":
        with np.load(io.BytesIO(blob)) as archive:
            catboost, logistic = archive["catboost"].tobytes(), archive["logistic"].tobytes()
        return cls(
            CalibratedCatBoost.from_stored(catboost, spec_json["catboost"]),
            LogisticBaseline.from_stored(logistic, spec_json["logistic"]),
        )


StoredModel = CalibratedCatBoost | LogisticBaseline | Blend
FAMILIES: dict[str, type[CalibratedCatBoost] | type[LogisticBaseline] | type[Blend]] = {
    family.kind: family for family in (CalibratedCatBoost, LogisticBaseline, Blend)
}


@dataclass(frozen=True)
class ActiveModel:
    """What scores a tenant: `kind` "catboost", "logistic" or "blend" (with `model`), or "rules"
    (version "rules", no model)."""

    version: str
    kind: str
    model_id: uuid.UUID | None
    spec: FeatureSpec
    model: StoredModel | None = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("the rule-based score has no model: score it with risk/rules.py")
        return self.model.predict(frame)


_cache: dict[uuid.UUID, StoredModel] = {}


def stored_model(row: RiskModel) -> StoredModel:
    """The row's model, deserialised once per process."""
    cached = _cache.get(row.id)
    if cached is None:
        if row.model_blob is None or row.feature_spec is None:
            raise ValueError(f"model {row.version} has no stored model")
        cached = FAMILIES.get(row.kind, CalibratedCatBoost).from_stored(row.model_blob, row.feature_spec)
        if len(_cache) >= CACHED_MODELS:
            _cache.pop(next(iter(_cache)))
        _cache[row.id] = cached
    return cached


async def load_active_model(session: AsyncSession, tenant_id: uuid.UUID) -> ActiveModel:
    row = await RiskModelRepository(session, tenant_id).active()
    if row is None:
        from churnsaver.backend.risk.features import discover_spec

        return ActiveModel(RULES_VERSION, "rules", None, await discover_spec(session, tenant_id))
    model = stored_model(row)
    return ActiveModel(row.version, row.kind, row.id, model.spec, model)
