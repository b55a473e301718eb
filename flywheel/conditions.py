"""Where a condition on an item's own fields holds: shared by routing rules (`labeling.route`)
and the rules banks of automated reviewers (`automation.rules`), so a field test means the same
thing in both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flywheel.policy import FieldCondition


def fields_hold(when: FieldCondition, items: pd.DataFrame) -> np.ndarray:
    """A boolean per item: every field test of `when` holds (a value listed, a numeric range;
    a value that is missing or not a number fails a range)."""
    hold = np.ones(len(items), dtype=bool)
    for name, values in (when.field or {}).items():
        hold &= items[name].isin(values).to_numpy()
    for name, least in (when.field_at_least or {}).items():
        hold &= (pd.to_numeric(items[name], errors="coerce") >= least).to_numpy()
    for name, bound in (when.field_below or {}).items():
        hold &= (pd.to_numeric(items[name], errors="coerce") < bound).to_numpy()
    return hold
