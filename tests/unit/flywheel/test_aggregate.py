import pandas as pd
import pytest

from flywheel.aggregate import majority_labels
from flywheel.policy import parse_policy

POLICY = """
name: p
labels: {positive: bad, negative: ok}
fields: {numeric: [x]}
targets: {auto_action_precision: 0.9, review_recall: 0.9}
dataset: {tie_label: TIE}
"""


def _votes(rows):
    return pd.DataFrame(rows, columns=["item_id", "reviewer_id", "label", "decided_at"]).assign(
        decided_at=lambda f: pd.to_datetime(f["decided_at"], utc=True)
    )


VOTES = _votes(
    [
        ("a", "r1", "bad", "2026-01-01"),
        ("a", "r2", "bad", "2026-01-01"),
        ("a", "r3", "ok", "2026-01-01"),
        ("b", "r1", "bad", "2026-01-01"),
        ("b", "r2", "ok", "2026-01-01"),
        ("c", "r1", "ok", "2026-01-01"),
        # r1 changed their mind on d: only the later decision counts, so d is a 1-1 tie
        ("d", "r1", "ok", "2026-01-01"),
        ("d", "r1", "bad", "2026-01-02"),
        ("d", "r2", "ok", "2026-01-01"),
    ]
)


def test_majority_with_ties_going_where_the_policy_says():
    for tie_label, expected_tie in (("negative", "ok"), ("positive", "bad")):
        policy = parse_policy(POLICY.replace("TIE", tie_label))
        labels = majority_labels(VOTES, policy).set_index("item_id")
        assert labels.loc["a", "label"] == "bad" and labels.loc["a", "agreement"] == 2 / 3
        assert labels.loc["c", "label"] == "ok" and labels.loc["c", "n_reviews"] == 1
        assert labels.loc["b", "tie"] and labels.loc["b", "label"] == expected_tie
        assert labels.loc["d", "n_reviews"] == 2 and labels.loc["d", "tie"]
        assert labels["tie"].sum() == 2
        assert set(labels["method"]) == {"majority"}


def _world_votes():
    from tests.conftest import two_reviewer_votes

    return two_reviewer_votes(3000, positive_rate=0.3, seed=11)


def test_reliability_weighted_labels_are_at_least_as_accurate_as_majority():
    from flywheel.aggregate import aggregate_labels, majority_labels

    policy, votes, truth = _world_votes()
    weighted = aggregate_labels(votes, policy).set_index("item_id")
    majority = majority_labels(votes, policy).set_index("item_id")
    assert set(weighted["method"]) == {"dawid_skene"}
    acc_weighted = (weighted["is_positive"] == truth.reindex(weighted.index)).mean()
    acc_majority = (majority["is_positive"] == truth.reindex(majority.index)).mean()
    # where two reviewers disagree, the more reliable one wins instead of the tie rule
    assert acc_weighted > acc_majority
    assert acc_weighted > 0.96
    assert weighted["agreement"].between(0, 1).all()


def test_without_overlap_each_vote_stands():
    from flywheel.aggregate import aggregate_labels

    policy, votes, _ = _world_votes()
    single = votes.drop_duplicates("item_id")
    labels = aggregate_labels(single, policy).set_index("item_id")
    said = single.set_index("item_id")["label"].eq(policy.labels.positive)
    assert (labels["is_positive"] == said.reindex(labels.index)).all()


def _new_team(seed: int):
    """A history crowd, plus a new team who decide mostly violating items nobody else saw."""
    import numpy as np

    from simulation.world import DEFAULT_REVIEWERS, Reviewer, verdicts
    from tests.conftest import two_reviewer_votes

    policy, history, truth = two_reviewer_votes(2000, positive_rate=0.05, seed=seed)
    rng = np.random.default_rng(seed)
    team = [Reviewer(f"new-{i}", 0.94, 0.99, 30.0) for i in range(3)]
    truly = rng.random(31) < 30 / 31
    picks = [team[i] for k in range(31) for i in rng.permutation(3)[:2]]
    says, _ = verdicts(picks, np.repeat(truly, 2), np.zeros(62, bool), 0.15, rng)
    ids = [f"n{k}" for k in range(31)]
    fresh = pd.DataFrame(
        {
            "item_id": np.repeat(ids, 2),
            "reviewer_id": [r.reviewer_id for r in picks],
            "label": np.where(says, policy.labels.positive, policy.labels.negative),
            "decided_at": pd.Timestamp("2026-11-02", tz="UTC"),
        }
    )
    assert DEFAULT_REVIEWERS  # the history's reviewers are the simulator's
    return policy, pd.concat([history, fresh]), pd.concat([truth, pd.Series(truly, index=ids)])


def test_a_new_team_on_new_items_is_not_flipped():
    """Their items form their own component: the fit keeps them at least as right as the vote."""
    from flywheel.aggregate import aggregate_labels, majority_labels

    for seed in range(5):
        policy, votes, truth = _new_team(seed)
        new = [i for i in truth.index if str(i).startswith("n")]
        ours = aggregate_labels(votes, policy).set_index("item_id").loc[new, "is_positive"]
        vote = majority_labels(votes, policy).set_index("item_id").loc[new, "is_positive"]
        assert (ours == truth[new]).mean() >= (vote == truth[new]).mean()
        assert (ours == truth[new]).mean() > 0.9


def test_known_items_are_clamped_and_pin_the_reviewers():
    from flywheel.aggregate import fit_reliability

    policy, votes, truth = _world_votes()
    known = truth.head(300)
    fitted = fit_reliability(votes, policy, known)
    p = pd.Series(fitted.p_positive, index=fitted.items)
    assert (p.reindex(known.index) == known.astype(float)).all()
    fox = fitted.reviewers.loc["rev-fox"]
    ana = fitted.reviewers.loc["rev-ana"]
    assert fox["sensitivity"] < ana["sensitivity"] - 0.2


def test_an_adversary_is_held_at_chance_not_followed():
    """A reviewer who answers the opposite is estimated no better than chance."""
    from flywheel.aggregate import BETTER_THAN_CHANCE, fit_reliability

    policy, votes, _ = _world_votes()
    flipped = votes["reviewer_id"].eq("rev-eli")
    votes.loc[flipped, "label"] = votes.loc[flipped, "label"].map(
        {
            policy.labels.positive: policy.labels.negative,
            policy.labels.negative: policy.labels.positive,
        }
    )
    eli = fit_reliability(votes, policy).reviewers.loc["rev-eli"]
    assert eli["sensitivity"] + eli["specificity"] - 1 == pytest.approx(BETTER_THAN_CHANCE)
