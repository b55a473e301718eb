"""The queues' status: arrivals counted over the traffic the pushes drew on."""

import pandas as pd

from flywheel.lake import Lake
from flywheel.settings import Settings
from labeling.status import queue_status
from tests.conftest import queued_policy


def test_a_first_push_spreads_its_arrivals_over_the_traffic_it_took(tmp_path):
    """Sixty tasks pushed ten hours ago from two days of traffic arrived at 60 a day, not 6
    an hour: the rate is counted from the first work routed (kept by the push), and from the
    push itself only when nothing says more."""
    policy = queued_policy(tmp_path / "policies")
    lake = Lake(Settings(home=tmp_path / "home").lake_dir)
    now = pd.Timestamp.now(tz="UTC")
    pushed = now - pd.Timedelta(hours=10)
    lake.record_pushed(
        "spam",
        pd.DataFrame(
            {
                "item_id": [f"i{k}" for k in range(60)],
                "queue": ["review"] * 60,
                "review_queue": ["general"] * 60,
                "reason": ["in the band"] * 60,
                "task_id": [str(k) for k in range(60)],
                "project_id": [5] * 60,
                "pushed_at": [pushed] * 60,
            }
        ),
    )

    def rate() -> float:
        found = queue_status(policy, lake, now, days=0)
        return next(s for s in found if s.queue == "general").arrivals_per_hour

    assert rate() == 6.0
    since = (pushed - pd.Timedelta(hours=48)).isoformat()
    lake.write_labeling_state("spam", {"queues_since": since})
    assert rate() == round(60 / 58, 2)
