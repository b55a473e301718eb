import json

import pandas as pd
import pytest

from flywheel.errors import FlywheelError
from flywheel.policy import parse_policy
from tests.unit.flywheel.test_policy import MINIMAL
from training.dataset import build_dataset, load_dataset


def _parts(dataset):
    return {name: dataset.split(name) for name in ("train", "validation", "test")}


def test_hash_split_golden_excluded_and_manifest(stocked, spam):
    dataset = build_dataset(spam, stocked)
    parts = _parts(dataset)
    every = pd.concat(parts.values())
    assert every["item_id"].is_unique
    assert set(every["item_id"]).isdisjoint(stocked.golden("spam").frame["item_id"])
    shares = {name: len(part) / len(every) for name, part in parts.items()}
    assert abs(shares["validation"] - spam.dataset.validation_fraction) < 0.03, shares
    assert abs(shares["test"] - spam.dataset.test_fraction) < 0.03, shares
    # every period is in every split: the newest decisions are trained on
    assert parts["train"]["item_time"].max() > parts["test"]["item_time"].quantile(0.9)
    manifest = json.loads((dataset.path / "manifest.json").read_text())
    assert manifest["version"] == dataset.version
    assert sum(c["items"] for c in manifest["counts"].values()) == len(every)
    assert manifest["split"] == {
        "method": "hash",
        "validation_fraction": spam.dataset.validation_fraction,
        "test_fraction": spam.dataset.test_fraction,
        "salt": "split|spam",
    }
    assert manifest["source"]["decisions"] == len(stocked.decisions("spam"))
    assert manifest["golden"]["version"] == stocked.golden("spam").version
    assert manifest["labels"]["ties"] == int(every["tie"].sum())


def test_an_item_keeps_its_split_as_decisions_grow(stocked, spam, small_world):
    from flywheel.records import validate_decisions

    before = pd.concat(p.assign(part=n) for n, p in _parts(build_dataset(spam, stocked)).items())
    newer = small_world.decisions.tail(200).assign(
        item_id=lambda f: "new-" + f["item_id"], decided_at="2026-03-01T00:00:00Z"
    )
    stocked.append_decisions("spam", validate_decisions(newer, spam, "newer").frame, "newer")
    grown = build_dataset(spam, stocked)
    after = pd.concat(p.assign(part=n) for n, p in _parts(grown).items())
    kept = before.merge(after, on="item_id", suffixes=("_before", "_after"))
    assert len(kept) == len(before)
    assert (kept["part_before"] == kept["part_after"]).all()
    assert after["item_id"].str.startswith("new-").groupby(after["part"]).any().all()


def test_time_split_tests_on_the_newest_items(stocked, spam):
    timed = spam.model_copy(update={"dataset": spam.dataset.model_copy(update={"split": "time"})})
    dataset = build_dataset(timed, stocked)
    parts = _parts(dataset)
    assert parts["train"]["item_time"].max() <= parts["validation"]["item_time"].min()
    assert parts["validation"]["item_time"].max() <= parts["test"]["item_time"].min()
    assert dataset.manifest["split"]["method"] == "time"
    assert dataset.manifest["split"]["test_from"] == parts["test"]["item_time"].min().isoformat()
    assert dataset.version != build_dataset(spam, stocked).version


def test_same_inputs_same_version_and_no_rewrite(stocked, spam):
    first = build_dataset(spam, stocked)
    again = build_dataset(spam, stocked)
    assert (first.version, first.created, again.created) == (first.version, True, False)
    assert again.version == first.version
    assert load_dataset(spam, stocked, first.version).manifest == first.manifest
    with pytest.raises(FlywheelError, match="no dataset version 'd-nope'"):
        load_dataset(spam, stocked, "d-nope")


def test_golden_items_decided_by_reviewers_stay_out(stocked, spam, small_world):
    from flywheel.records import validate_decisions

    golden_ids = stocked.golden("spam").frame["item_id"].head(5)
    leak = small_world.golden[small_world.golden["item_id"].isin(golden_ids)].assign(
        reviewer_id="rev-ana", decided_at="2026-01-10T00:00:00Z"
    )
    stocked.append_decisions("spam", validate_decisions(leak, spam, "leak").frame, "leak")
    dataset = build_dataset(spam, stocked)
    assert dataset.manifest["golden"]["excluded_items"] == 5
    assert not dataset.split("train")["item_id"].isin(golden_ids).any()


def test_the_votes_travel_with_the_version_gold_checks_with_their_answer(
    stocked, spam, small_world
):
    """The noise model's input is kept with the version: each reviewer's latest word per item,
    golden items decided as gold checks with their known answer."""
    from flywheel.records import validate_decisions

    golden = stocked.golden("spam").frame.head(5)
    checks = small_world.golden[small_world.golden["item_id"].isin(golden["item_id"])].assign(
        reviewer_id="rev-ana", decided_at="2026-01-10T00:00:00Z"
    )
    stocked.append_decisions("spam", validate_decisions(checks, spam, "gold").frame, "gold")
    dataset = build_dataset(spam, stocked)
    votes = dataset.votes()
    assert (
        len(votes) == dataset.manifest["votes"]["votes"]
        and not votes.duplicated(["item_id", "reviewer_id"]).any()
    )
    known = votes.dropna(subset=["known"]).set_index("item_id")["known"]
    truth = golden.set_index("item_id")["label"].eq(spam.labels.positive)
    assert dataset.manifest["votes"]["gold_checks"] == 5
    assert known.sort_index().tolist() == truth.sort_index().tolist()
    items = pd.concat(_parts(dataset).values())["item_id"]
    assert set(votes["item_id"]) == set(items) | set(golden["item_id"])


def test_a_flagged_reviewer_is_named_with_the_decisions_removed(stocked, spam):
    path = stocked.labeling_path("spam", "qa.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"flagged": ["rev-fox"]}))
    decisions = stocked.decisions("spam")
    dataset = build_dataset(spam, stocked)
    removed = dataset.manifest["flagged_reviewers"]
    assert removed["excluded"] == ["rev-fox"]
    assert removed["decisions_removed"] == {
        "rev-fox": int(decisions["reviewer_id"].eq("rev-fox").sum())
    }
    assert removed["excluded_decisions"] == removed["decisions_removed"]["rev-fox"] > 0
    assert not dataset.votes()["reviewer_id"].eq("rev-fox").any()


def test_too_small_or_one_sided_data_writes_nothing(lake, tmp_path):
    policy = parse_policy(MINIMAL)
    from flywheel.records import validate_decisions

    raw = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(400)],
            "label": "genuine",
            "reviewer_id": "r1",
            "decided_at": pd.date_range("2026-01-01", periods=400, freq="h", tz="UTC"),
            "followers": 1.0,
            "following": 2.0,
            "posts_per_day": 3.0,
            "signup_channel": "web",
        }
    )
    lake.append_decisions(policy.name, validate_decisions(raw, policy, "x").frame, "x")
    with pytest.raises(FlywheelError, match="the train split has 0 'fake' items"):
        build_dataset(policy, lake)
    assert lake.dataset_versions(policy.name) == []
    small = parse_policy(MINIMAL + "dataset: {min_train_items: 1000}\n")
    with pytest.raises(
        FlywheelError, match=r"dataset too small for fake_accounts: \d+ training items.*1000"
    ):
        build_dataset(small, lake)
    assert lake.dataset_versions(policy.name) == []


def test_no_decisions_is_a_clear_error(lake, spam):
    with pytest.raises(FlywheelError, match="no decisions stored for spam"):
        build_dataset(spam, lake)
