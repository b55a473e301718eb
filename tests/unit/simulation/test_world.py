import numpy as np
import pandas as pd
import pytest

from flywheel.errors import FlywheelError
from flywheel.policy import parse_policy
from flywheel.records import read_table, validate_decisions, validate_golden
from simulation.world import WorldConfig, simulate, world_spec, write_world
from tests.conftest import SMALL_WORLD
from tests.unit.flywheel.test_policy import MINIMAL


def test_same_seed_same_world(spam, small_world):
    again = simulate(spam, SMALL_WORLD)
    pd.testing.assert_frame_equal(again.decisions, small_world.decisions)
    pd.testing.assert_frame_equal(again.golden, small_world.golden)
    other = simulate(spam, WorldConfig(**{**SMALL_WORLD.__dict__, "seed": 8}))
    assert not other.traffic["text"].equals(small_world.traffic["text"])


def test_world_is_realistic(spam):
    world = simulate(spam, WorldConfig(days=20, items_per_day=600, emerging_day=12))
    truth = world.truth[world.truth["set"] == "traffic"]
    assert 0.02 <= truth["is_violating"].mean() <= 0.10
    assert 0.03 <= truth["is_borderline"].mean() <= 0.15
    before, after = truth[truth["day"] < 12], truth[truth["day"] >= 12]
    assert before["is_emerging"].sum() == 0 and after["is_emerging"].sum() > 50

    items = world.traffic.merge(truth, on="item_id")
    emerging, old = (
        items[items["is_emerging"]],
        items[items["is_violating"] & ~items["is_emerging"]],
    )
    new_words = world_spec(spam).text.emerging
    assert emerging["text"].str.contains("|".join(new_words)).mean() > 0.8, "new wording"
    assert old["text"].str.contains("|".join(new_words)).mean() < 0.02
    assert emerging["account_age_days"].median() > 3 * old["account_age_days"].median(), (
        "shifted signals"
    )


def test_reviewers_differ_and_one_is_unreliable(spam, small_world):
    decided = small_world.decisions.merge(small_world.truth, on="item_id")
    correct = decided["label"].eq(spam.labels.positive) == decided["is_violating"]
    violating = decided["is_violating"]
    sensitivity = correct[violating].groupby(decided.loc[violating, "reviewer_id"]).mean()
    reviewers = small_world.reviewers.set_index("reviewer_id")
    unreliable = reviewers.index[reviewers["unreliable"]].tolist()
    assert unreliable == ["rev-fox"]
    assert sensitivity.idxmin() == "rev-fox"
    assert sensitivity.drop("rev-fox").min() > sensitivity["rev-fox"] + 0.1
    assert (decided.groupby("item_id")["reviewer_id"].nunique() > 1).any(), (
        "some items reviewed twice"
    )
    assert decided.groupby(["item_id", "reviewer_id"]).size().max() == 1


def test_files_follow_the_contract_and_keep_truth_apart(spam, small_world, world_files):
    decisions = read_table(world_files["decisions"])
    golden = read_table(world_files["golden"])
    assert validate_decisions(decisions, spam, "d").ignored_columns == []
    assert validate_golden(golden, spam, "g").ignored_columns == []
    for frame in (decisions, golden):
        assert not {"is_violating", "is_emerging", "is_borderline", "strength"} & set(frame.columns)
    assert world_files["truth"].parent.name == "truth"
    assert set(golden["item_id"]).isdisjoint(small_world.traffic["item_id"])
    golden_truth = small_world.truth[small_world.truth["set"] == "golden"].set_index("item_id")
    assert (
        golden.set_index("item_id")["label"].eq("violating") == golden_truth["is_violating"]
    ).all()
    assert np.isclose(golden["label"].eq("violating").mean(), 0.3, atol=0.02)


def test_a_signals_only_policy_simulates(tmp_path):
    policy = parse_policy(MINIMAL)
    world = simulate(
        policy, WorldConfig(days=4, items_per_day=200, emerging_day=2, golden_items=40)
    )
    write_world(world, tmp_path, "jsonl")
    assert (
        validate_decisions(read_table(tmp_path / "decisions.jsonl"), policy, "d")
        .frame["followers"]
        .notna()
        .all()
    )
    assert set(world.traffic["signup_channel"]) == {f"signup_channel_{c}" for c in "abcd"}


def test_bad_world_config_is_refused():
    with pytest.raises(FlywheelError, match="emerging day must be between 0 and 5"):
        WorldConfig(days=5, emerging_day=9).validate()


def test_a_hidden_campaign_has_new_words_and_benign_signals(spam):
    from simulation.world import campaign_phrases

    config = WorldConfig(days=10, items_per_day=500, emerging_day=10, campaign_day=6)
    world = simulate(spam, config)
    truth = world.truth[world.truth["set"] == "traffic"].reset_index(drop=True)
    campaign = truth["is_campaign"].to_numpy()
    assert not campaign[truth["day"] < 6].any()
    share = campaign[truth["day"] >= 6].mean()
    assert abs(share - config.campaign_share) < 0.03
    assert truth.loc[campaign, "is_violating"].all() and truth.loc[campaign, "is_emerging"].all()
    words = {w for phrase in campaign_phrases(spam, config.seed) for w in phrase.split()}
    text = world.traffic["text"].str.lower()
    assert text[campaign].map(lambda t: bool(words & set(t.split()))).all()
    assert not text[~campaign].map(lambda t: bool(words & set(t.split()))).any()
    vocabulary = " ".join([*world_spec(spam).text.violating, *world_spec(spam).text.emerging])
    assert not words & set(vocabulary.split())
    # everyday wording around its phrases, from accounts like benign ones, unlike the violating
    # ones the first model saw
    everyday = " ".join(world_spec(spam).text.benign).split()
    assert text[campaign].str.findall(r"[a-z]+").map(lambda t: bool(set(everyday) & set(t))).all()
    benign = ~truth["is_violating"].to_numpy()
    violating = truth["is_violating"].to_numpy() & ~campaign
    for field in ("links", "account_age_days", "messages_last_hour"):
        values = world.traffic[field]
        to_benign = abs(values[campaign].mean() - values[benign].mean())
        assert to_benign < 0.25 * abs(values[violating].mean() - values[benign].mean()), field
    with pytest.raises(FlywheelError, match="campaign"):
        WorldConfig(days=5, emerging_day=5, campaign_day=9).validate()


def test_the_campaign_rewords_what_the_live_model_would_not_allow(spam):
    from simulation.world import campaign_phrases, evade

    config = WorldConfig(days=4, items_per_day=500, emerging_day=4, campaign_day=2)
    world = simulate(spam, config)
    truth = world.truth.set_index("item_id").loc[world.traffic["item_id"]]
    campaign = truth["is_campaign"].to_numpy()
    phrases = campaign_phrases(spam, config.seed)

    def wary(frame: pd.DataFrame) -> np.ndarray:
        """A model that happens to review long messages, and knows nothing else."""
        return np.where(frame["text"].str.len() > 40, "review", "allow")

    before = wary(world.traffic[campaign])
    assert (before == "review").sum() > 20
    posted, reworded = evade(world.traffic, campaign, spam, config.seed, wary, tries=5)
    assert reworded == (before == "review").sum()
    assert (wary(posted[campaign]) == "review").sum() <= 2  # 5 tries rarely all fail
    # the payload stays: every reworded item still carries one of the campaign's phrases
    texts = posted.loc[campaign, "text"].str.lower()
    assert texts.map(lambda t: any(p in t for p in phrases)).all()
    pd.testing.assert_frame_equal(posted[~campaign], world.traffic[~campaign])
    assert posted["item_id"].equals(world.traffic["item_id"])

    def learnt(frame: pd.DataFrame) -> np.ndarray:
        """A model that learnt the campaign's phrases: no rewording gets past it."""
        text = frame["text"].str.lower()
        return np.where(text.map(lambda t: any(p in t for p in phrases)), "review", "allow")

    posted, reworded = evade(world.traffic, campaign, spam, config.seed, learnt, tries=3)
    assert reworded == campaign.sum() and (learnt(posted[campaign]) == "review").all()
    unprobed, reworded = evade(world.traffic, campaign, spam, config.seed, learnt, tries=0)
    assert reworded == 0 and unprobed.equals(world.traffic)


def test_the_simulation_section_is_checked_when_a_world_is_built():
    from flywheel.policy import parse_policy

    declared = parse_policy(MINIMAL + "simulation:\n  numeric:\n    karma: {benign: 1}\n")
    with pytest.raises(
        FlywheelError, match=r"simulation\.numeric names fields not in fields\.numeric: karma"
    ):
        simulate(declared, WorldConfig(days=2, items_per_day=50, emerging_day=1))
    typo = parse_policy(MINIMAL + "simulation:\n  base_rat: 0.05\n")
    with pytest.raises(
        FlywheelError, match=r"simulation\.base_rat: unknown key \(did you mean 'base_rate'\?\)"
    ):
        world_spec(typo)
    for name in ("spam", "scam"):
        from flywheel.policy import load_policy

        assert 0.02 <= world_spec(load_policy(name)).base_rate <= 0.10


def test_a_multilingual_world_writes_each_language_in_its_own_words():
    """Items in the policy's other languages use those languages' vocabularies, at their
    shares, violations among them too, and lingua tells them apart; a bad code or shares
    leaving nothing to the policy's own language are refused by name."""
    from flywheel.language import detect_languages
    from flywheel.policy import load_policy

    scam = load_policy("scam")
    world = simulate(scam, WorldConfig(days=2, items_per_day=1500, emerging_day=1))
    items = world.traffic.merge(world.truth, on="item_id")
    shares = items["language"].value_counts(normalize=True)
    assert abs(shares["pt"] - 0.2) < 0.03 and 0.02 < shares["sw"] < 0.06
    violating = items[items["is_violating"]].groupby("language").size()
    assert (violating.reindex(["", "pt", "sw"]) >= 5).all(), violating
    spec = world_spec(scam).languages["sw"].text
    swahili = items[items["language"] == "sw"]
    assert swahili["text"].str.contains("|".join(spec.benign)).all()
    found = detect_languages(items["text"], ["en", "pt", "sw"])
    expected = items["language"].replace("", "en")
    assert (found == expected).mean() > 0.97

    words = "\n".join(f"        {k}: [a, b, c, d, e]" for k in ("benign", "violating", "emerging"))
    for languages, problem in (
        ("    xx:\n      share: 0.1\n", "'xx': not an ISO 639-1 code"),
        ("    pt:\n      share: 1.0\n", "share"),
    ):
        section = "simulation:\n  languages:\n" + languages + "      text:\n" + words
        bad = parse_policy(MINIMAL + section)
        with pytest.raises(FlywheelError, match=problem):
            world_spec(bad)
