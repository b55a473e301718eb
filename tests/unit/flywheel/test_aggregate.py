import pandas as pd

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


def test_reliability_falls_back_to_majority_without_overlap():
    from flywheel.aggregate import aggregate_labels

    policy, votes, _ = _world_votes()
    single = votes.drop_duplicates("item_id")
    labels = aggregate_labels(single, policy)
    assert set(labels["method"]) == {"majority"}
