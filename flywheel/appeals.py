"""Appeals: a user whose content the API auto-actioned asks for a person to look again.

The scoring API receives them (`POST /v1/appeals`) and this module keeps them in the lake
(`appeals/<policy>/`), one per item: only an item the API auto-actioned can be appealed, its
latest prediction says so, and a second appeal of the same item returns the first. Labeling
pushes each to the policy's appeals queue, showing the reviewer the original decision, the
model version and the score with the user's reason; the reviewer's decision is a decision like
any other (source `appeal`), which trains the next model. An appeal decided benign is
*overturned*, and the policy's reinstate webhook hears of it; monitoring reports the overturn
rate with its interval. Appealed items select themselves (users appeal what they think wrong),
so the rate says how often appeals are right, not how often auto-action is wrong: the blind
audit says that.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from flywheel.errors import FlywheelError
from flywheel.lake import Lake, utc_now
from flywheel.policy import Policy
from flywheel.predictions import prediction_of
from flywheel.settings import Settings

MAX_REASON = 2000  # characters of the user's reason kept


class UnknownItem(FlywheelError):
    """No prediction of this item is logged for the policy."""


class NotAutoActioned(FlywheelError):
    """The item's latest decision was not auto_action: there is nothing to appeal."""


@dataclass(frozen=True)
class Received:
    appeal: dict
    created: bool  # False: the item was appealed before, and this is that appeal


def appeal_id(policy: str, item_id: str) -> str:
    return hashlib.sha256(f"{policy}:{item_id}".encode()).hexdigest()[:16]


def receive(settings: Settings, policy: Policy, item_id: str, reason: str) -> Received:
    """Keep an appeal of an auto-actioned item, once per item."""
    lake = Lake(settings.lake_dir)
    with lake.lock(policy.name, "appeals"):
        known = lake.appeals(policy.name)
        if not known.empty and (known["item_id"] == item_id).any():
            return Received(_plain(known[known["item_id"] == item_id].iloc[0].to_dict()), False)
        logged = prediction_of(settings, policy, item_id)
        if logged is None:
            raise UnknownItem(f"no prediction of item {item_id!r} is logged for {policy.name}")
        if logged["decision"] != "auto_action":
            raise NotAutoActioned(
                f"item {item_id!r} was not auto-actioned by {policy.name} (its latest decision "
                f"is {logged['decision']}): only an auto-actioned item can be appealed"
            )
        row = {
            "appeal_id": appeal_id(policy.name, item_id),
            "item_id": item_id,
            "reason": reason.strip()[:MAX_REASON],
            "appealed_at": pd.Timestamp(utc_now()),
            "decision": logged["decision"],
            "model_version": int(logged["model_version"]),
            "score": float(logged["score"]),
            "scored_at": pd.Timestamp(logged["scored_at"]),
            **{name: logged.get(name) for name in policy.feature_columns},
        }
        lake.record_appeal(policy.name, pd.DataFrame([row]))
        return Received(_plain(row), True)


def _plain(row: dict) -> dict:
    """JSON-ready: times as ISO text, numpy scalars as Python's, missing values as None."""
    out = {}
    for key, value in row.items():
        if isinstance(value, pd.Timestamp):
            out[key] = value.isoformat()
        elif hasattr(value, "item"):
            out[key] = value.item()
        else:
            out[key] = (
                None if value is None or (isinstance(value, float) and value != value) else value
            )
    return out
