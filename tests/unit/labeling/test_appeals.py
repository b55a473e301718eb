import pandas as pd

from flywheel.lake import Lake
from flywheel.policy import load_policy
from labeling.appeals import outcomes, settle
from monitoring.production import appeal_rates
from tests.conftest import http_stub

T0 = pd.Timestamp("2026-12-01", tz="UTC")


def _appeals(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "appeal_id": [f"ap{k}" for k in range(n)],
            "item_id": [f"i{k}" for k in range(n)],
            "model_version": [3] * (n - 1) + [4],
            "reason": ["mine"] * n,
        }
    )


def _votes(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "reviewer_id": [r[1] for r in rows],
            "label": [r[2] for r in rows],
            "decided_at": [T0 + pd.Timedelta(minutes=k) for k in range(len(rows))],
            "source": "appeal",
        }
    )


def test_an_appeal_is_decided_at_the_overlap_by_majority_and_a_tie_goes_by_the_policy():
    policy = load_policy("spam")  # overlap 2, ties negative
    votes = _votes(
        [
            ("i0", "a", "benign"), ("i0", "b", "benign"),  # overturned
            ("i1", "a", "violating"), ("i1", "b", "violating"),  # upheld
            ("i2", "a", "violating"), ("i2", "b", "benign"),  # a tie: negative, overturned
            ("i3", "a", "benign"),  # one of two: not decided yet
        ]
    )  # fmt: skip
    decided = outcomes(policy, _appeals(4), votes).set_index("item_id")
    assert decided["outcome"].to_dict() == {"i0": "overturned", "i1": "upheld", "i2": "overturned"}
    # a decision from the review queue on an appealed item is not the appeal's
    assert outcomes(policy, _appeals(4), votes.assign(source="review")).empty


def test_overturns_reach_the_webhook_once_and_a_failed_post_is_tried_again(tmp_path):
    policy = load_policy("spam").model_copy()
    lake = Lake(tmp_path)
    lake.record_appeal("spam", _appeals(2))
    lake.append_decisions("spam", _votes([("i0", "a", "benign"), ("i0", "b", "benign"),
                                          ("i1", "a", "violating"), ("i1", "b", "violating")]),
                          "test")  # fmt: skip
    answers, heard = [503, 503, 503, 200], []

    def answer(handler, body):
        heard.append(body)
        return answers.pop(0)

    with http_stub(answer) as url:
        hooked = policy.model_copy(
            update={"labeling": policy.labeling.model_copy(update={"reinstate_webhook": url})}
        )
        assert settle(hooked, lake) == 1  # three tries, all refused
        first = lake.appeal_outcomes("spam").set_index("item_id")
        assert not first.loc["i0", "notified"] and "HTTP 503" in first.loc["i0", "notify_error"]
        assert first.loc["i1", "notified"]  # upheld: nothing to tell
        assert settle(hooked, lake) == 0
        assert settle(hooked, lake) == 0  # heard: not posted again
    assert len(heard) == 4 and lake.appeal_outcomes("spam")["notified"].all()


def test_the_overturn_rate_per_version_carries_its_bounds_and_says_appeals_select_themselves():
    outcomes_ = pd.DataFrame(
        {"model_version": [3] * 10 + [4], "outcome": ["overturned"] * 3 + ["upheld"] * 8}
    )
    rates = appeal_rates(_appeals(12), outcomes_, 0.95)
    v3 = rates["by_version"]["3"]
    assert (v3["received"], v3["decided"], v3["overturned"]) == (11, 10, 3)
    assert v3["overturn_rate"]["low"] < 0.3 < v3["overturn_rate"]["high"]
    assert rates["by_version"]["4"]["overturn_rate"]["value"] == 0.0
    assert "select themselves" in rates["note"]
