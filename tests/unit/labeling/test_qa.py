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
    assert fox["reason"].startswith("balanced accuracy") and "gold checks" in fox["reason"]
    assert fox["balanced_accuracy_ci"][1] < policy.labeling.min_reviewer_accuracy
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


def test_on_too_little_evidence_no_one_is_flagged_and_everyone_is_unjudged():
    policy, decisions, golden = _decisions(30, golden_share=0.1)
    report = reviewer_quality(decisions, golden, policy)
    assert report["flagged"] == []
    assert sorted(report["unjudged"]) == sorted(r["reviewer_id"] for r in report["reviewers"])
    assert all("not enough evidence" in r["reason"] for r in report["reviewers"])


def _history(seed: int, flip: float = 0.35, n_items: int = 2500):
    """Imported history without a single gold check: five careful reviewers and one who flips
    a share of their answers, a third of the items decided twice."""
    from simulation.world import DEFAULT_REVIEWERS, Reviewer, verdicts

    policy = load_policy("spam")
    rng = np.random.default_rng(seed)
    pool = [*DEFAULT_REVIEWERS[:5], Reviewer("rev-zed", 1 - flip, 1 - flip, 20.0)]
    truly = rng.random(n_items) < 0.06
    counts = np.where(rng.random(n_items) < 0.33, 2, 1)
    picks = np.argsort(rng.random((n_items, len(pool))), axis=1)
    chosen = [pool[i] for i in picks[np.arange(len(pool)) < counts[:, None]]]
    item = np.repeat(np.arange(n_items), counts)
    says, lead = verdicts(chosen, truly[item], rng.random(len(item)) < 0.08, 0.15, rng)
    decisions = pd.DataFrame(
        {
            "item_id": [f"h{i}" for i in item],
            "reviewer_id": [r.reviewer_id for r in chosen],
            "label": np.where(says, policy.labels.positive, policy.labels.negative),
            "decided_at": pd.Timestamp("2026-10-01", tz="UTC")
            + pd.to_timedelta(np.arange(len(item)) * 60, unit="s"),
            "lead_time_s": lead,
        }
    )
    return policy, decisions


def test_a_careless_reviewer_without_gold_checks_is_flagged_on_shared_items():
    policy, decisions = _history(seed=1)
    report = reviewer_quality(decisions, None, policy)
    zed = next(r for r in report["reviewers"] if r["reviewer_id"] == "rev-zed")
    assert report["flagged"] == ["rev-zed"], report["reviewers"]
    assert zed["gold_checks"] == 0 and zed["overlap_items"] > 100
    assert "0 gold checks" in zed["reason"]


def test_careful_reviewers_are_flagged_in_few_worlds():
    """Over many seeded worlds, a reviewer above the bar is flagged in at most the share the
    confidence allows (here none of 5 careful reviewers in 20 worlds may be, within error)."""
    wrong = 0
    for seed in range(20):
        policy, decisions = _history(seed, n_items=1500)
        report = reviewer_quality(decisions, None, policy)
        wrong += len(set(report["flagged"]) - {"rev-zed"})
        assert "rev-zed" in report["flagged"]
    assert wrong <= 0.05 * 5 * 20


def test_a_flag_holds_until_the_evidence_clears_it():
    policy, decisions = _history(seed=2, n_items=300)
    first = reviewer_quality(decisions, None, policy)
    ana = next(r for r in first["reviewers"] if r["reviewer_id"] == "rev-ana")
    low, high = ana["balanced_accuracy_ci"]
    assert ana["standing"] == "unjudged" and low < policy.labeling.min_reviewer_accuracy < high
    kept = reviewer_quality(decisions, None, policy, previous={"flagged": ["rev-ana"]})
    assert "rev-ana" in kept["flagged"]
    assert "flagged earlier" in next(
        r["reason"] for r in kept["reviewers"] if r["reviewer_id"] == "rev-ana"
    )
    # the report asks for the gold checks that would judge her; she answers them as she
    # answers everything, and the flag clears within a few rounds of asking
    report, golden, rng = kept, pd.DataFrame(columns=["item_id", "label"]), np.random.default_rng(7)
    for round_ in range(3):
        ana = next(r for r in report["reviewers"] if r["reviewer_id"] == "rev-ana")
        if not ana["flagged"]:
            break
        asked = ana["needs_gold_checks"]
        # at a 6% base rate, violations are what is missing first
        assert asked["violating"] > 0 if round_ == 0 else sum(asked.values()) > 0, ana
        checks = _gold_checks(policy, "rev-ana", asked, len(golden), rng)
        golden = pd.concat(
            [golden, checks[["item_id", "truth"]].rename(columns={"truth": "label"})]
        )
        decisions = pd.concat([decisions, checks.drop(columns="truth")], ignore_index=True)
        report = reviewer_quality(decisions, golden, policy, previous=report)
    assert "rev-ana" not in report["flagged"], ana


def _gold_checks(policy, reviewer_id: str, asked: dict, offset: int, rng) -> pd.DataFrame:
    """The gold checks a report asks for, answered by the simulated reviewer."""
    from simulation.world import DEFAULT_REVIEWERS, verdicts

    reviewer = next(r for r in DEFAULT_REVIEWERS if r.reviewer_id == reviewer_id)
    truly = np.r_[np.ones(asked["violating"], bool), np.zeros(asked["benign"], bool)]
    says, lead = verdicts([reviewer] * len(truly), truly, rng.random(len(truly)) < 0.08, 0.15, rng)
    return pd.DataFrame(
        {
            "item_id": [f"g{offset + k}" for k in range(len(truly))],
            "reviewer_id": reviewer_id,
            "label": np.where(says, policy.labels.positive, policy.labels.negative),
            "truth": np.where(truly, policy.labels.positive, policy.labels.negative),
            "decided_at": pd.Timestamp("2026-10-20", tz="UTC"),
            "lead_time_s": lead,
        }
    )


def test_an_empty_lake_gives_an_empty_report():
    policy = load_policy("spam")
    report = reviewer_quality(pd.DataFrame(), None, policy)
    assert report["reviewers"] == [] and report["flagged"] == []


def test_a_models_held_out_scores_let_the_intervals_cover_where_votes_alone_cannot():
    """With one or two votes per item the votes alone leave a tie between "violations rare,
    reviewers careful" and "violations commoner, reviewers missing more": with much evidence
    the intervals close around the prior's choice and miss the truth. Banding the noise model
    by a model's held-out score breaks the tie (violations 10%, reviewers erring on 2%, half
    the items decided twice)."""
    from simulation.scored import scored_world
    from simulation.world import team

    policy = load_policy("spam")
    covered = {False: [], True: []}
    for seed in range(5):
        world = scored_world(np.random.default_rng(seed), 0.10, team(0.02), overlap=0.5)
        votes = world.votes.drop(columns="known").replace(
            {"label": {"violating": policy.labels.positive, "benign": policy.labels.negative}}
        )
        truth = {r.reviewer_id: r for r in world.team}
        for banded in covered:
            scores = pd.Series(world.scores) if banded else None
            report = reviewer_quality(votes, None, policy, scores=scores)
            assert report["flagged"] == []
            for r in report["reviewers"]:
                t = truth[r["reviewer_id"]]
                covered[banded] += [
                    r["sensitivity_ci"][0] <= t.sensitivity <= r["sensitivity_ci"][1],
                    r["specificity_ci"][0] <= t.specificity <= r["specificity_ci"][1],
                ]
    assert np.mean(covered[True]) >= 0.85 > np.mean(covered[False]), {
        k: np.mean(v) for k, v in covered.items()
    }


def test_the_same_evidence_keeps_its_judgement(tmp_path):
    """QA judges again when decisions arrive, and once when a model's scores first band it; a
    new model alone does not judge the same votes again (a rerun would retrain on a flag's
    chance flicker)."""
    from flywheel.lake import Lake
    from labeling.qa import run_qa

    policy, decisions, truth = two_reviewer_votes(400, positive_rate=0.3, seed=3)
    lake = Lake(tmp_path)
    lake.append_decisions(policy.name, decisions.iloc[:600], "history")
    first = run_qa(policy, lake)
    assert not first["scored"]
    assert run_qa(policy, lake)["computed_at"] == first["computed_at"]

    def scores(version: int) -> pd.DataFrame:
        noise = np.random.default_rng(version).normal(0, 0.1, len(truth))
        return pd.DataFrame(
            {"item_id": truth.index, "score": truth.to_numpy() + noise, "model_version": version}
        )

    lake.write_labelled_scores(policy.name, scores(1))
    banded = run_qa(policy, lake)
    assert banded["scored"] and banded["computed_at"] != first["computed_at"]
    lake.write_labelled_scores(policy.name, scores(2))
    assert run_qa(policy, lake)["computed_at"] == banded["computed_at"]
    lake.append_decisions(policy.name, decisions.iloc[600:], "more")
    again = run_qa(policy, lake)
    assert again["computed_at"] != banded["computed_at"]
    assert sum(r["decisions"] for r in again["reviewers"]) == len(decisions)


def test_each_reviewer_is_reported_per_queue_as_well_as_overall():
    policy, decisions, golden = _decisions(1200, golden_share=0.2)
    decisions = decisions.assign(task_id=[f"t{k // 2}" for k in range(len(decisions))])
    queues = pd.Series(
        ["general" if k % 3 else "portuguese" for k in range(1200)],
        index=[f"t{k}" for k in range(1200)],
    )
    report = reviewer_quality(decisions, golden, policy, queues=queues)
    for r in report["reviewers"]:
        split = r["by_queue"]
        assert set(split) == {"general", "portuguese"}
        assert sum(q["decisions"] for q in split.values()) == r["decisions"]
        for q in split.values():
            assert q["sensitivity_ci"][0] <= q["sensitivity"] <= q["sensitivity_ci"][1]
        # a queue's share of the evidence is less, so its bounds are wider than overall
        width = r["sensitivity_ci"][1] - r["sensitivity_ci"][0]
        queue_width = (
            split["portuguese"]["sensitivity_ci"][1] - split["portuguese"]["sensitivity_ci"][0]
        )
        assert queue_width > width
    fox = next(r for r in report["reviewers"] if r["reviewer_id"] == "rev-fox")
    others = [r for r in report["reviewers"] if r["reviewer_id"] != "rev-fox"]
    for name in ("general", "portuguese"):
        assert fox["by_queue"][name]["specificity"] < min(
            r["by_queue"][name]["specificity"] for r in others
        )


def _verdicts(policy, items: pd.Series, says_positive: np.ndarray, name: str, queue: str = ""):
    """An automated reviewer's answers on items (None where `says_positive` is None)."""
    label = [
        None if s is None else (policy.labels.positive if s else policy.labels.negative)
        for s in says_positive
    ]
    return pd.DataFrame(
        {
            "item_id": items.to_numpy(),
            "reviewer_id": f"auto:{name}",
            "label": pd.array(label, dtype="string"),
            "failure": pd.array(
                [None if s is not None else "timed out" for s in says_positive], dtype="string"
            ),
            "review_queue": queue,
            "asked_at": pd.Timestamp("2026-12-01", tz="UTC"),
        }
    )


def test_automated_reviewers_are_judged_against_people_and_cannot_move_people_s_judgement():
    policy, decisions, golden = _decisions(1200, golden_share=0.2)
    people = reviewer_quality(decisions, golden, policy)
    _, _, truth = two_reviewer_votes(1200, positive_rate=0.4, seed=5)
    items = pd.Series(truth.index)
    rng = np.random.default_rng(1)
    right = np.where(rng.random(len(items)) < 0.98, truth.to_numpy(), ~truth.to_numpy())
    lazy = np.zeros(len(items), dtype=bool)  # says benign to everything
    failing = np.array([None if k % 5 == 0 else bool(v) for k, v in enumerate(right)], dtype=object)
    verdicts = pd.concat(
        [
            _verdicts(policy, items, right.astype(object), "good", "general"),
            _verdicts(policy, items, lazy.astype(object), "lazy"),
            _verdicts(policy, items, failing, "flaky"),
        ]
    )
    report = reviewer_quality(decisions, golden, policy, verdicts=verdicts)
    by_id = {r["reviewer_id"]: r for r in report["reviewers"]}
    # people are judged exactly as without them
    for r in people["reviewers"]:
        assert by_id[r["reviewer_id"]] == r
    good, lazy_row, flaky = by_id["auto:good"], by_id["auto:lazy"], by_id["auto:flaky"]
    assert good["kind"] == "automated" and good["standing"] == "meets the bar"
    # against people's reference, which errs with people on hard items: a little below the 98%
    # it is right against the truth
    low, high = good["sensitivity_ci"]
    assert 0.9 < low <= good["sensitivity"] <= high <= 1.0
    assert good["by_queue"]["general"]["decisions"] == 1200
    assert lazy_row["flagged"] and "auto:lazy" in report["flagged"]
    assert lazy_row["sensitivity"] == 0.0 and lazy_row["specificity"] == 1.0
    assert flaky["failures"] == 240 and flaky["decisions"] == 960 and flaky["asked"] == 1200
    assert good["gold_checks"] == 240 and good["overlap_items"] == 960


def test_autonomy_is_granted_per_queue_and_label_only_where_its_bound_holds_and_revoked_after():
    from flywheel.policy import Autonomy, RulesReviewer

    policy, decisions, golden = _decisions(1200, golden_share=0.2)
    bar = Autonomy(min_accuracy=0.9, min_checks=50)
    bank = {
        "kind": "rules",
        "version": "1",
        "rules": [{"name": "r", "verdict": "violating", "terms": ["x"]}],
    }
    policy = policy.model_copy(
        update={
            "automated_reviewers": [
                RulesReviewer(name=n, autonomy=bar, **bank) for n in ("good", "biased", "few")
            ]
            + [RulesReviewer(name="manual", autonomy=None, **bank)]
        }
    )
    _, _, truth = two_reviewer_votes(1200, positive_rate=0.4, seed=5)
    items, t = pd.Series(truth.index), truth.to_numpy()
    rng = np.random.default_rng(2)
    good = np.where(rng.random(len(t)) < 0.98, t, ~t)
    biased = t & (rng.random(len(t)) < 0.5)  # misses half the violations, never invents one
    verdicts = pd.concat(
        [
            _verdicts(policy, items, good.astype(object), "good", "general"),
            _verdicts(policy, items, biased.astype(object), "biased", "general"),
            _verdicts(policy, items[:30], good[:30].astype(object), "few", "general"),
            _verdicts(policy, items, good.astype(object), "manual", "general"),
        ]
    )
    previous = {
        "reviewers": [
            {
                "reviewer_id": "auto:biased",
                "kind": "automated",
                "autonomy": {"granted": [{"queue": "general", "label": "benign"}]},
            }
        ]
    }
    report = reviewer_quality(decisions, golden, policy, previous, verdicts=verdicts)
    grants = {
        r["reviewer_id"]: r["autonomy"] for r in report["reviewers"] if r.get("kind") == "automated"
    }

    def labels(reviewer: str, kind: str) -> list[str]:
        return [(g["queue"], g["label"]) for g in grants[reviewer][kind]]

    assert labels("auto:good", "granted") == [("general", "benign"), ("general", "violating")]
    # the biased one: alone on what it gets right (violating), never on the class it gets wrong
    assert labels("auto:biased", "granted") == [("general", "violating")]
    refused = grants["auto:biased"]["refused"][0]
    assert (refused["label"], refused["reason"][:20]) == ("benign", "accuracy at least 0.")
    assert refused["low"] < 0.9 and refused["accuracy"] < 0.9
    assert labels("auto:biased", "revoked") == [("general", "benign")]
    assert labels("auto:few", "granted") == []
    assert all("fewer than 50" in r["reason"] for r in grants["auto:few"]["refused"])
    assert grants["auto:manual"] == {"granted": [], "refused": [], "revoked": [], "off": True}
    for g in grants["auto:good"]["granted"]:
        assert g["low"] >= 0.9 and g["answers"] >= 50


def test_at_a_low_base_rate_a_reviewer_that_calls_everything_benign_earns_no_autonomy():
    """With 2% violations, always saying benign is right on 98% of answers: autonomy also asks
    that it rarely says benign on a violation, which it always does."""
    from flywheel.policy import Autonomy, RulesReviewer

    policy, decisions, truth = two_reviewer_votes(3000, positive_rate=0.02, seed=11)
    bank = {
        "kind": "rules",
        "version": "1",
        "rules": [{"name": "r", "verdict": "violating", "terms": ["x"]}],
        "autonomy": Autonomy(min_accuracy=0.9, min_checks=50),
    }
    policy = policy.model_copy(
        update={"automated_reviewers": [RulesReviewer(name=n, **bank) for n in ("lazy", "good")]}
    )
    items, t = pd.Series(truth.index), truth.to_numpy()
    good = np.where(np.random.default_rng(3).random(len(t)) < 0.995, t, ~t)
    verdicts = pd.concat(
        [
            _verdicts(policy, items, np.zeros(len(t), dtype=bool).astype(object), "lazy", "q"),
            _verdicts(policy, items, good.astype(object), "good", "q"),
        ]
    )
    report = reviewer_quality(decisions, None, policy, verdicts=verdicts)
    grants = {r["reviewer_id"]: r["autonomy"] for r in report["reviewers"] if r.get("kind")}
    lazy = grants["auto:lazy"]
    assert lazy["granted"] == []
    (refused,) = lazy["refused"]
    assert refused["label"] == "benign" and refused["low"] >= 0.9  # right on its answers...
    assert refused["other_label_kept_low"] == 0.0  # ...and blind to every violation
    assert refused["reason"].startswith("it says benign on at most 1.000")
    # one that catches every violation shows it as far as 55 violations, decided by people
    # without a gold check, can show: far from the lazy one's 0, short of the bar
    good_benign = next(g for g in grants["auto:good"]["refused"] if g["label"] == "benign")
    assert 0.5 < good_benign["other_label_kept_low"] < 0.9
