"""The worked example of a `model` reviewer: `alt-profanity-check`, a classifier whose PyPI
package carries its own weights (the `examples` extra).

What it is: a linear SVM on bag-of-words features, trained by its authors on about 200,000
English comments and tweets labelled offensive or not. What it knows is English profanity and
insults. It does not know abuse: harassment, threats or slurs written without swear words pass
it; friendly swearing ("this shit is great") is marked offensive; it knows no other language.
Judged against a policy's reviewers it will earn autonomy, if ever, only on the labels and
queues where that narrow skill is what the policy asks (docs/automated-reviewers.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def probability(fields: pd.DataFrame) -> np.ndarray:
    """Each item's probability of being offensive, from its text (the string fields joined)."""
    from profanity_check import predict_prob  # loads its weights: only when this reviewer is used

    text = fields.select_dtypes(include=["object", "string"]).fillna("").astype(str)
    joined = text.agg(" ".join, axis=1) if text.shape[1] else pd.Series("", index=fields.index)
    return np.asarray(predict_prob(joined.tolist()), dtype=float)
