"""Exact CatBoost SHAP values at the cost of a prediction, from per-tree, per-leaf tables.

CatBoost's own SHAP pass costs orders of magnitude more per row than a prediction
(docs/performance.md, risk scoring). Two facts make it cheap to do better, exactly:
- a model's SHAP values are the sum of its trees' (each tree's value function is separate);
- in an oblivious tree every depth has one split, so the leaf a row reaches records its every
  decision, and path-dependent TreeSHAP (CatBoost's) reads nothing else: one SHAP vector per leaf.
So the table of tree t holds, for each leaf, the SHAP values CatBoost computes for one row that
reaches it, with the model cut down to tree t. A batch then costs one leaf-index pass and a
gather per tree; a tree's values are non-zero only on the few features it splits on, so only
those columns are gathered.

Filling costs one CatBoost call per tree, whatever the rows, so it is done for all
trees at once from one representative row per unknown leaf. Training fills the tables from the
training rows and stores them with the model (`to_array` / `from_array`): a process that loads
a model scores at full speed from its first batch, and only a leaf no training row reached is
filled on the way.
"""

import functools
import threading
import weakref

import numpy as np
from catboost import CatBoostClassifier, Pool

UNKNOWN = np.nan  # a leaf whose SHAP values were not computed yet


class LeafShapTables:
    def __init__(self, model: CatBoostClassifier, features: int, stored: np.ndarray | None = None) -> None:
        """Empty tables for `model`, or the ones `to_array` saved (`stored`)."""
        self._model = model
        leaf_counts = [int(count) for count in model.get_tree_leaf_counts()]
        self._offsets = np.cumsum([0, *leaf_counts])
        # One row per leaf of every tree, one column per feature plus the expected value, as
        # CatBoost lays out SHAP; the last row holds the model's expected margin (the same for
        # every row: one-tree models disagree with the whole model on the bias).
        if stored is not None and stored.shape == (self._offsets[-1] + 1, features + 1):
            self._table = stored.copy()
        else:
            self._table = np.full((self._offsets[-1] + 1, features + 1), UNKNOWN)
        self._lock = threading.Lock()
        self._gathers = [self._gather_columns(tree) for tree in range(len(leaf_counts))]

    def to_array(self) -> np.ndarray:
        return self._table.copy()

    def shap_values(self, pool: Pool) -> np.ndarray:
        """What `model.get_feature_importance(pool, type="ShapValues")` returns, n x (features + 1)."""
        # Tree by tree, each tree's leaves and each feature's values are contiguous runs.
        leaves = np.ascontiguousarray(self._model.calc_leaf_indexes(pool).T)
        self.fill(pool, leaves)
        result = np.zeros((self._table.shape[1], pool.num_row()))
        for tree, (columns, values) in enumerate(self._gathers):
            reached = leaves[tree]
            for column, by_leaf in zip(columns, values, strict=True):
                result[column] += by_leaf[reached]
        result[-1] = self._table[-1, -1]
        return result.T

    def fill(self, pool: Pool, leaves: np.ndarray | None = None) -> None:
        """Compute the tables' unknown leaves that rows of `pool` reach (`leaves`: trees x rows,
        computed when not given): one row per such leaf, taken from the pool once, then one call
        per tree that has any."""
        leaves = np.ascontiguousarray(self._model.calc_leaf_indexes(pool).T) if leaves is None else leaves
        if self.covers(leaves):
            return
        with self._lock:
            wanted = []  # (tree, leaves to fill, the row reaching each)
            for tree in range(leaves.shape[0]):
                column = leaves[tree]
                unknown = np.flatnonzero(np.isnan(self._table[self._offsets[tree] + column, -1]))
                if len(unknown):
                    leaf_ids, first = np.unique(column[unknown], return_index=True)
                    wanted.append((tree, leaf_ids, unknown[first]))
            if not wanted and not np.isnan(self._table[-1, -1]):
                return
            rows = np.unique(np.concatenate([reaching for *_, reaching in wanted] or [np.zeros(1, dtype=int)]))
            # Slicing a pool copies it whole: once here, then small slices of the small pool.
            sample = pool.slice(rows.tolist()) if len(rows) < pool.num_row() else pool
            for tree, leaf_ids, reaching in wanted:
                one_tree = self._model.copy()
                one_tree.shrink(tree + 1, ntree_start=tree)
                positions = np.searchsorted(rows, reaching).tolist()
                values = one_tree.get_feature_importance(
                    sample.slice(positions), type="ShapValues", shap_mode="NoPreCalc"
                )
                self._table[self._offsets[tree] + leaf_ids] = values
                self._gathers[tree] = self._gather_columns(tree)
            if np.isnan(self._table[-1, -1]):
                whole = self._model.get_feature_importance(sample.slice([0]), type="ShapValues", shap_mode="NoPreCalc")
                self._table[-1, -1] = whole[0, -1]

    def covers(self, leaves: np.ndarray) -> bool:
        """Whether every leaf in `leaves` (trees x rows) is known."""
        if np.isnan(self._table[-1, -1]):
            return False
        known = ~np.isnan(self._table[:, -1])
        return all(known[offset + reached].all() for offset, reached in zip(self._offsets[:-1], leaves, strict=True))

    def _gather_columns(self, tree: int) -> tuple[list[int], list[np.ndarray]]:
        """The tree's non-zero feature columns and each one's value per leaf (0 where unknown)."""
        table = np.nan_to_num(self._table[self._offsets[tree] : self._offsets[tree + 1], :-1])
        columns = np.flatnonzero(np.abs(table).max(axis=0) > 0).tolist() if len(table) else []
        return columns, [np.ascontiguousarray(table[:, column]) for column in columns]


_tables: dict[int, tuple[weakref.ref, LeafShapTables]] = {}
_tables_lock = threading.Lock()


def leaf_tables(model: CatBoostClassifier, features: int, stored: np.ndarray | None = None) -> LeafShapTables:
    """The tables kept as long as `model` lives (made, from `stored` if given, on first use)."""
    key = id(model)
    with _tables_lock:
        entry = _tables.get(key)
        if entry is None or entry[0]() is not model:  # an id is reused once its object is gone
            tables = LeafShapTables(model, features, stored)
            # The dict is bound now: at interpreter exit the module's globals are gone first.
            forget = functools.partial(_tables.pop, key, None)
            _tables[key] = (weakref.ref(model, lambda _ref: forget()), tables)
            return tables
        return entry[1]


def leaf_shap_values(model: CatBoostClassifier, pool: Pool) -> np.ndarray:
    """The model's SHAP values for `pool`, through its tables."""
    if pool.num_row() == 0:
        return np.zeros((0, pool.num_col() + 1))
    if not is_symmetric(model):
        return model.get_feature_importance(pool, type="ShapValues")  # leaves do not fix the path
    return leaf_tables(model, pool.num_col()).shap_values(pool)


def is_symmetric(model: CatBoostClassifier) -> bool:
    return model.get_all_params().get("grow_policy", "SymmetricTree") == "SymmetricTree"
