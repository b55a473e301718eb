"""Simulated users who appeal, so that the demo's appeals queue and overturn rate have work.

A user whose item the API auto-actioned may appeal it through the scoring API
(`POST /v1/appeals`), as a real client would forward it. Users wrongly actioned appeal often;
violators sometimes, hoping. Only the choice of who appeals reads the simulator's truth; the
platform hears an appeal and nothing more.
"""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd

from flywheel.errors import FlywheelError

REASONS = {
    False: (
        "This was a normal message to a friend.",
        "I sell things here every week; please look again.",
        "Removed by mistake: it was about paying back my sister.",
    ),
    True: (
        "I did nothing wrong.",
        "Everyone else posts the same thing.",
    ),
}


def appeal(
    url: str,
    key: str,
    policy: str,
    served: pd.Series,
    violating: pd.Series,
    rng: np.random.Generator,
    wrongly: float,
    rightly: float,
) -> pd.Series:
    """Appeal some of the items `served` says were auto-actioned: a benign one with chance
    `wrongly`, a violating one with chance `rightly`. Returns, per appealed item, whether it
    was violating (the truth, for the demo's table only)."""
    actioned = served.index[served.eq("auto_action")]
    truly = violating.reindex(actioned).fillna(False).astype(bool)
    chance = np.where(truly, rightly, wrongly)
    chosen = truly[rng.random(len(truly)) < chance]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        for item_id, bad in chosen.items():
            reason = str(rng.choice(REASONS[bool(bad)]))
            answer = client.post(
                "/v1/appeals",
                json={"policy": policy, "item_id": item_id, "reason": reason},
                timeout=60,
            )
            if answer.status_code not in (200, 201):
                raise FlywheelError(
                    f"appealing {item_id}: the scoring API answered {answer.status_code}: "
                    f"{answer.text}"
                )
    return chosen
