"""The exploration queue: inclusion probabilities that hold, strata filled in order, and a
queue apart from the blind audit."""

import numpy as np
import pandas as pd
import pytest

from flywheel.policy import load_policy
from labeling.explore import ExploreInputs, exploration_sample, proportional_probabilities
from labeling.push import plan

NOW = pd.Timestamp("2026-11-04", tz="UTC")


@pytest.fixture(scope="module")
def policy():
    return load_policy("spam")


def _with(policy, **labeling):
    return policy.model_copy(update={"labeling": policy.labeling.model_copy(update=labeling)})


def _allowed(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "item_id": [f"a{k}" for k in range(n)],
            "decision": "allow",
            "score": rng.beta(1, 12, n),
            "scored_at": NOW - pd.to_timedelta(rng.integers(0, 48 * 3600, n), unit="s"),
        }
    )


def test_probabilities_are_proportional_capped_and_sum_to_the_budget():
    weights = np.array([100.0, 1, 1, 2, 0, 4])
    probs = proportional_probabilities(weights, 3)
    assert probs.sum() == pytest.approx(3)
    assert probs[0] == 1.0 and probs[4] == 0.0  # the heavy one is capped, the zero never drawn
    rest = probs[[1, 2, 3, 5]]
    assert rest / rest[0] == pytest.approx(weights[[1, 2, 3, 5]] / weights[1])
    # fewer candidates than the budget: every candidate, no more
    assert proportional_probabilities(np.array([0.2, 0.0, 0.5]), 10).tolist() == [1, 0, 1]


def test_each_stratum_is_estimated_without_bias_from_its_probabilities(policy):
    """Weighted by 1/p, the draws count every stratum's items: the recorded probabilities are
    the ones the draw used (200 seeded worlds)."""
    policy = _with(policy, review_batch=400, explore_budget=0.25)
    errors = []
    for seed in range(200):
        items = _allowed(3000, seed)
        novelty = pd.Series(
            np.random.default_rng(seed).beta(1, 6, 3000), index=items["item_id"].to_numpy()
        )
        items = items.assign(item_id=items["item_id"] + f"-{seed}")
        novelty.index = novelty.index + f"-{seed}"
        drawn = exploration_sample(items, policy, ExploreInputs(novelty, {}, 0.2), set())
        novel = novelty >= policy.monitoring.novelty
        estimate = (1 / drawn.loc[drawn["stratum"] == "novel", "sampling_prob"]).sum()
        errors.append(estimate / novel.sum() - 1)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.02, errors.mean()


def test_clusters_first_then_novel_then_near_the_threshold(policy):
    policy = _with(policy, review_batch=200, explore_budget=0.5)  # 100 tasks: 40/40/20
    items = _allowed(2000)
    ids = items["item_id"]
    novelty = pd.Series(np.where(np.arange(2000) < 30, 0.9, 0.0), index=ids.to_numpy())
    representatives = {i: "zorvik, plexa" for i in ids[1990:]}  # 10 of them: all drawn
    drawn = exploration_sample(items, policy, ExploreInputs(novelty, representatives, 0.3), set())
    by = drawn.groupby("stratum")
    assert by.size()["clusters"] == 10
    assert (by.get_group("clusters")["sampling_prob"] == 1.0).all()
    # 30 novel items for 40 + 30 left by the clusters: all of them, the rest passes on
    assert by.size()["novel"] == 30
    near = by.get_group("near_threshold")
    assert near["sampling_prob"].sum() < 1.5 * len(near) and 40 <= len(near) <= 80
    assert near["score"].mean() > items["score"].mean()  # drawn towards the threshold
    assert drawn.loc[drawn["stratum"] == "clusters", "reason"].str.contains("zorvik").all()
    assert drawn.loc[drawn["stratum"] == "near_threshold", "reason"].str.contains("0.300").all()
    # never an item a queue already had, and nothing at all without a budget
    again = exploration_sample(
        items, policy, ExploreInputs(novelty, representatives, 0.3), set(drawn["item_id"])
    )
    assert not set(again["item_id"]) & set(drawn["item_id"])
    assert exploration_sample(
        items, _with(policy, explore_budget=0.0), ExploreInputs(), set()
    ).empty


def test_exploration_leaves_the_blind_audit_as_designed(policy):
    rng = np.random.default_rng(1)
    log = pd.concat(
        [
            _allowed(8000, 1),
            pd.DataFrame(
                {
                    "item_id": [f"r{k}" for k in range(300)],
                    "decision": "review",
                    "score": rng.uniform(0.3, 0.8, 300),
                    "scored_at": NOW - pd.Timedelta(hours=1),
                }
            ),
        ],
        ignore_index=True,
    ).assign(text="x", account_age_days=1.0)
    golden = pd.DataFrame({"item_id": ["g1"], "label": ["benign"]})
    ledger = pd.DataFrame(columns=["item_id", "queue"])
    on = plan(policy, log, golden, ledger, NOW)
    off = plan(_with(policy, explore_budget=0.0), log, golden, ledger, NOW)
    audit = {
        name: set(t.loc[t["queue"] == "audit", "item_id"]) for name, t in (("on", on), ("off", off))
    }
    assert audit["on"] == audit["off"] and audit["on"]
    explored = on[on["queue"] == "explore"]
    assert len(explored) and not set(explored["item_id"]) & audit["on"]
    assert (explored["decision"] == "allow").all()
    assert len(on[on["queue"].isin(["review", "explore"])]) <= policy.labeling.review_batch


def test_a_push_explores_only_traffic_scored_since_the_last_one(policy):
    """Novel and near-threshold items come from new traffic; a cluster's representatives from
    the whole window, since the cluster may be older than the last push."""
    policy = _with(policy, review_batch=200, explore_budget=0.5)
    items = _allowed(2000)
    ids = items["item_id"]
    novelty = pd.Series(0.9, index=ids.to_numpy())
    since = NOW - pd.Timedelta(hours=24)
    old = pd.to_datetime(items["scored_at"], utc=True) <= since
    representatives = {i: "zorvik" for i in ids[old][:5]}
    drawn = exploration_sample(
        items, policy, ExploreInputs(novelty, representatives, 0.3), set(), since
    )
    by_id = items.set_index("item_id")["scored_at"]
    others = drawn[drawn["stratum"] != "clusters"]
    assert len(others) and (pd.to_datetime(by_id[others["item_id"]], utc=True) > since).all()
    assert set(drawn.loc[drawn["stratum"] == "clusters", "item_id"]) == set(representatives)
    # nothing scored since: only the clusters' representatives are left to explore
    later = exploration_sample(items, policy, ExploreInputs(novelty, {}, 0.3), set(), NOW)
    assert later.empty
