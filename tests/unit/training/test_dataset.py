import json

import pandas as pd
import pytest

from flywheel.errors import FlywheelError
from flywheel.policy import parse_policy
from tests.unit.flywheel.test_policy import MINIMAL
from training.dataset import build_dataset, load_dataset


def test_time_split_golden_excluded_and_manifest(stocked, spam):
    dataset = build_dataset(spam, stocked)
    parts = {name: dataset.split(name) for name in ("train", "validation", "test")}
    assert parts["train"]["item_time"].max() <= parts["validation"]["item_time"].min()
    assert parts["validation"]["item_time"].max() <= parts["test"]["item_time"].min()
    every = pd.concat(parts.values())
    assert every["item_id"].is_unique
    assert set(every["item_id"]).isdisjoint(stocked.golden("spam").frame["item_id"])
    manifest = json.loads((dataset.path / "manifest.json").read_text())
    assert manifest["version"] == dataset.version
    assert sum(c["items"] for c in manifest["counts"].values()) == len(every)
    assert manifest["split"]["method"] == "time"
    assert manifest["source"]["decisions"] == len(stocked.decisions("spam"))
    assert manifest["golden"]["version"] == stocked.golden("spam").version
    assert manifest["labels"]["ties"] == int(every["tie"].sum())


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


def test_too_small_or_one_sided_data_writes_nothing(lake, tmp_path):
    policy = parse_policy(MINIMAL)
    from flywheel.records import validate_decisions

    raw = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(300)],
            "label": "genuine",
            "reviewer_id": "r1",
            "decided_at": pd.date_range("2026-01-01", periods=300, freq="h", tz="UTC"),
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
        FlywheelError, match=r"dataset too small for fake_accounts: 210 training items.*1000"
    ):
        build_dataset(small, lake)
    assert lake.dataset_versions(policy.name) == []


def test_no_decisions_is_a_clear_error(lake, spam):
    with pytest.raises(FlywheelError, match="no decisions stored for spam"):
        build_dataset(spam, lake)
