import numpy as np
import pandas as pd
import pytest

from flywheel.lake import uniform_draw
from flywheel.policy import load_policy
from labeling.push import plan
from labeling.sample import audit_sample, gold_sample, review_queue


@pytest.fixture(scope="module")
def policy():
    return load_policy("spam")


def _log(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    decision = rng.choice(["allow", "review", "auto_action"], size=n, p=[0.8, 0.15, 0.05])
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "decision": decision,
            "score": rng.random(n),
            "scored_at": pd.Timestamp("2026-11-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 72 * 3600, n), unit="s"),
        }
    )


def test_draws_are_uniform_and_reproducible():
    keys = pd.Series([f"k{i}" for i in range(20000)])
    first, again = uniform_draw(keys, "s"), uniform_draw(keys, "s")
    assert np.array_equal(first, again)
    assert abs(first.mean() - 0.5) < 0.01
    assert not np.array_equal(first, uniform_draw(keys, "other"))


def test_audit_inclusion_matches_the_policy_rate_per_decision(policy):
    log = _log(60000)
    sample = audit_sample(log, policy, pushed=set())
    rates = policy.labeling.audit_rates.model_dump()
    for decision, rate in rates.items():
        population = (log["decision"] == decision).sum()
        drawn = (sample["decision"] == decision).sum()
        # binomial: within 4 standard deviations of the expected count
        assert abs(drawn - rate * population) < 4 * np.sqrt(population * rate * (1 - rate)) + 1
        assert (sample.loc[sample["decision"] == decision, "sampling_prob"] == rate).all()


def test_horvitz_thompson_weights_recover_the_population_size(policy):
    log = _log(60000, seed=3)
    sample = audit_sample(log, policy, pushed=set())
    estimate = (1 / sample["sampling_prob"]).sum()
    assert abs(estimate - len(log)) / len(log) < 0.06


def test_audit_never_draws_an_item_already_audited(policy):
    log = _log(5000)
    first = audit_sample(log, policy, pushed=set())
    second = audit_sample(log, policy, pushed=set(first["item_id"]))
    assert second.empty


def test_review_queue_orders_by_score_and_age_and_skips_pushed(policy):
    now = pd.Timestamp("2026-11-02", tz="UTC")
    log = pd.DataFrame(
        {
            "item_id": ["old-low", "new-high", "new-low", "pushed", "allowed"],
            "decision": ["review", "review", "review", "review", "allow"],
            "score": [0.30, 0.60, 0.30, 0.99, 0.01],
            "scored_at": pd.to_datetime(
                ["2026-10-20", "2026-11-02", "2026-11-02", "2026-11-02", "2026-11-02"], utc=True
            ),
        }
    )
    queue = review_queue(log, policy, now, pushed={"pushed"})
    # 13 days waiting outweighs a 0.3 score gap at the policy's age weight
    assert list(queue["item_id"]) == ["old-low", "new-high", "new-low"]
    assert queue["priority"].is_monotonic_decreasing


def test_gold_checks_follow_the_rate_and_are_not_reused(policy):
    policy = policy.model_copy(
        update={"labeling": policy.labeling.model_copy(update={"gold_rate": 0.05})}
    )
    labels = ["violating"] * 20 + ["benign"] * 80
    golden = pd.DataFrame({"item_id": [f"g{i}" for i in range(100)], "label": labels})
    first = gold_sample(golden, policy, n_other=400, pushed=set())
    assert len(first) == round(policy.labeling.gold_rate * 400)
    # balanced between labels although the golden set is 20% violating
    assert (first["label"] == "violating").sum() == len(first) // 2
    second = gold_sample(golden, policy, n_other=400, pushed=set(first["item_id"]))
    assert not set(first["item_id"]) & set(second["item_id"])
    # when one label runs out, the other fills the rest
    scarce = gold_sample(golden, policy, n_other=1000, pushed=set())
    assert (scarce["label"] == "violating").sum() == 20 and len(scarce) == 50


def test_gold_checks_lean_to_what_reviewer_qa_asks_for(policy):
    """Unjudged reviewers at a low base rate ask for violating gold checks: the next checks
    lean that way, in the same number (the policy's gold rate)."""
    from labeling.qa import gold_mix

    report = {
        "reviewers": [
            {"needs_gold_checks": {"violating": 30, "benign": 0}},
            {"needs_gold_checks": {"violating": 10, "benign": 10}},
            {"needs_gold_checks": None},  # meets the bar: asks nothing
        ]
    }
    assert gold_mix(report) == pytest.approx(0.8) and gold_mix(None) == 0.5
    labels = ["violating"] * 50 + ["benign"] * 50
    golden = pd.DataFrame({"item_id": [f"g{i}" for i in range(100)], "label": labels})
    leaning = gold_sample(golden, policy, n_other=100, pushed=set(), violating_share=0.8)
    assert len(leaning) == round(policy.labeling.gold_rate * 100) < 50
    assert (leaning["label"] == "violating").sum() == round(0.8 * len(leaning))


def test_plan_mixes_gold_among_the_other_tasks(policy):
    log = _log(20000).assign(text="x", account_age_days=1.0)
    golden = pd.DataFrame({"item_id": [f"g{i}" for i in range(500)], "label": "benign"})
    ledger = pd.DataFrame(columns=["item_id", "queue"])
    tasks = plan(policy, log, golden, ledger, pd.Timestamp("2026-11-05", tz="UTC"))
    positions = np.flatnonzero(tasks["queue"].eq("gold"))
    assert set(tasks["queue"]) == {"review", "explore", "audit", "gold"}
    # exploration is spent within the review capacity, the review queue fills the rest
    counts = tasks["queue"].value_counts()
    assert counts["review"] + counts["explore"] == policy.labeling.review_batch
    assert tasks["reason"].notna().all()
    assert positions.min() > 0 and positions.max() < len(tasks) - 1
    assert "label" not in tasks.columns  # the gold answer never travels with the task
