import numpy as np
import pandas as pd

from flywheel.policy import load_policy
from labeling.qa import reviewer_quality
from tests.conftest import two_reviewer_votes


def _decisions(n_items: int, golden_share: float, seed: int = 5):
    """Simulated reviewers, two per item, on items of which a share is golden."""
    policy, decisions, truth = two_reviewer_votes(n_items, positive_rate=0.4, seed=seed)
    golden = truth.head(int(golden_share * n_items))
    golden = pd.DataFrame(
        {
            "item_id": golden.index,
            "label": np.where(golden, policy.labels.positive, policy.labels.negative),
        }
    )
    return policy, decisions, golden


def test_the_unreliable_reviewer_is_flagged_and_only_them():
    policy, decisions, golden = _decisions(1200, golden_share=0.2)
    report = reviewer_quality(decisions, golden, policy)
    assert report["flagged"] == ["rev-fox"]
    by_id = {r["reviewer_id"]: r for r in report["reviewers"]}
    fox = by_id["rev-fox"]
    low, high = fox["gold_accuracy_ci"]
    assert low <= fox["gold_accuracy"] <= high
    assert fox["gold_checks"] >= policy.labeling.min_gold_checks
    assert "balanced gold accuracy" in fox["reason"]
    # the careless one agrees least with the others and decides fastest
    others = [r for r in report["reviewers"] if r["reviewer_id"] != "rev-fox"]
    assert fox["consensus_agreement"] < min(r["consensus_agreement"] for r in others)
    assert fox["median_seconds_per_decision"] < min(
        r["median_seconds_per_decision"] for r in others
    )


def test_agreement_statistics_are_in_range_and_pairs_cover_shared_items():
    policy, decisions, golden = _decisions(1200, golden_share=0.2)
    report = reviewer_quality(decisions, golden, policy)
    assert 0.5 < report["krippendorff_alpha"] <= 1.0
    assert len(report["pairs"]) == 15  # six reviewers, every pair shares items
    worst = min(report["pairs"], key=lambda p: p["cohen_kappa"])
    assert "rev-fox" in worst["reviewers"]


def test_no_one_is_flagged_on_too_few_gold_checks():
    policy, decisions, golden = _decisions(60, golden_share=0.1)
    report = reviewer_quality(decisions, golden, policy)
    assert report["flagged"] == []
    assert all(r["gold_checks"] < policy.labeling.min_gold_checks for r in report["reviewers"])


def test_an_empty_lake_gives_an_empty_report():
    policy = load_policy("spam")
    report = reviewer_quality(pd.DataFrame(), None, policy)
    assert report["reviewers"] == [] and report["flagged"] == []
