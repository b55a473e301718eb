"""Reviewer decisions become an immutable, content-addressed dataset version.

One label per item (reviewers weighed by reliability, see `flywheel.aggregate`, with gold checks
pinning it), golden items left out, the decisions of reviewers that QA flags left out (QA showed
them below the bar; the manifest names each and how many decisions that removed), and beside
the splits every remaining vote (`votes.parquet`: the operating thresholds weigh the labels'
noise with them, `training.thresholds.draw_truth`),
items split into train / validation / test. By default the split is drawn from a hash
of the item id: an item stays in the same split in every version (no version tests on what an
earlier one trained on), and the decisions of the last cycle reach training at once. Splitting
by time instead (`dataset.split: time`) tests on the newest items, but keeps the newest
decisions, and so a new abuse pattern, out of training for as long as they are the newest. The
version id is a hash of the rows and the rules, so building twice from the same decisions gives
the same version and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel.aggregate import aggregate_labels, latest_per_reviewer
from flywheel.errors import FlywheelError
from flywheel.files import staged_directory
from flywheel.lake import Lake, content_hash, uniform_draw, utc_now, write_parquet_atomic
from flywheel.policy import Policy

SPLITS = ("train", "validation", "test")
VOTES_FILE = "votes.parquet"


@dataclass(frozen=True)
class DatasetVersion:
    """A built dataset version on disk."""

    policy: str
    version: str
    path: Path
    manifest: dict
    created: bool = False  # this build wrote it; False when the version already existed

    def split(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.path / f"{name}.parquet")

    def votes(self) -> pd.DataFrame | None:
        """Each reviewer's latest decision on the version's items and on golden items (gold
        checks, with their known truth in `known`): what the threshold rules weigh the labels'
        noise with. None for a version built before votes were kept."""
        path = self.path / VOTES_FILE
        return pd.read_parquet(path) if path.is_file() else None


def _items(decisions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One row per decided item: its latest fields and its time (created, else first decided)."""
    features = ",\n".join(f'arg_max("{c}", decided_at) AS "{c}"' for c in policy.feature_columns)
    return Lake.query(
        f"""
        SELECT item_id,
               coalesce(min(created_at), min(decided_at)) AS item_time,
               {features}
        FROM decisions
        GROUP BY item_id
        """,
        decisions=decisions,
    )


def _split(frame: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, dict]:
    """Assign each item to train, validation or test by the policy's split rule."""
    rules = policy.dataset
    frame = frame.sort_values(["item_time", "item_id"], ignore_index=True)
    rule = {
        "method": rules.split,
        "validation_fraction": rules.validation_fraction,
        "test_fraction": rules.test_fraction,
    }
    if rules.split == "hash":
        draw = uniform_draw(frame["item_id"], f"split|{policy.name}")
        first_validation = 1.0 - rules.validation_fraction - rules.test_fraction
        first_test = 1.0 - rules.test_fraction
        split = np.where(
            draw >= first_test, "test", np.where(draw >= first_validation, "validation", "train")
        )
        return frame.assign(split=split), {**rule, "salt": f"split|{policy.name}"}
    n = len(frame)
    first_test = n - round(n * rules.test_fraction)
    first_validation = first_test - round(n * rules.validation_fraction)
    split = pd.Series("train", index=frame.index)
    split.iloc[first_validation:first_test] = "validation"
    split.iloc[first_test:] = "test"
    rule |= {
        "time_column": "item_time",
        "validation_from": _iso(frame["item_time"].iloc[first_validation])
        if first_validation < n
        else None,
        "test_from": _iso(frame["item_time"].iloc[first_test]) if first_test < n else None,
    }
    return frame.assign(split=split), rule


def _iso(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).isoformat()


def _check_trainable(frame: pd.DataFrame, policy: Policy) -> tuple[dict, list[str]]:
    """Refuse data too small or too one-sided to train, calibrate and test on."""
    rules = policy.dataset
    counts = {}
    for name in SPLITS:
        part = frame[frame["split"] == name]
        positives = int(part["is_positive"].sum())
        counts[name] = {
            "items": len(part),
            policy.labels.positive: positives,
            policy.labels.negative: len(part) - positives,
        }
    train_items = counts["train"]["items"]
    if train_items < rules.min_train_items:
        raise FlywheelError(
            f"dataset too small for {policy.name}: {train_items} training items, "
            f"the policy asks for at least {rules.min_train_items} (dataset.min_train_items)"
        )
    # the model must see both labels; the thresholds rest on train and validation together
    # (cross-fitted), so a thin validation or test split is noted, not refused
    pooled = {
        label: counts["train"][label] + counts["validation"][label]
        for label in (policy.labels.positive, policy.labels.negative)
    }
    for name, part in (
        ("train split has", counts["train"]),
        ("train and validation splits have", pooled),
    ):
        for label in (policy.labels.positive, policy.labels.negative):
            if part[label] < rules.min_items_per_class:
                raise FlywheelError(
                    f"dataset cannot be trained for {policy.name}: the {name} "
                    f"{part[label]} {label!r} items, the policy asks for at least "
                    f"{rules.min_items_per_class} of each label (dataset.min_items_per_class)"
                )
    thin = [
        f"the {name} split has {counts[name][label]} {label!r} items"
        for name in ("validation", "test")
        for label in (policy.labels.positive, policy.labels.negative)
        if counts[name][label] < rules.min_items_per_class
    ]
    return counts, thin


def _flagged_reviewers(policy: Policy, lake: Lake) -> set[str]:
    """Reviewers the latest QA report (`labeling.qa`, in the lake) flags: their decisions are
    left out, since QA showed them below the bar (`dataset.exclude_flagged_reviewers`)."""
    path = lake.labeling_path(policy.name, "qa.json")
    if not policy.dataset.exclude_flagged_reviewers or not path.is_file():
        return set()
    return set(json.loads(path.read_text()).get("flagged", []))


def _votes(trusted: pd.DataFrame, known: pd.Series | None) -> pd.DataFrame:
    """Each reviewer's latest word per item, golden items' with their known truth: the noise
    model's input (`flywheel.noise`), kept with the version so that its thresholds can be
    recomputed from it alone."""
    votes = latest_per_reviewer(trusted)[["item_id", "reviewer_id", "label", "decided_at"]]
    votes = votes.sort_values(["item_id", "reviewer_id"], ignore_index=True)
    truth = known.reindex(votes["item_id"]).to_numpy() if known is not None else None
    return votes.assign(
        known=pd.array(truth if truth is not None else [None] * len(votes), "boolean")
    )


def build_dataset(policy: Policy, lake: Lake) -> DatasetVersion:
    """Build (or find) the dataset version for the decisions stored now."""
    decisions = lake.decisions(policy.name)
    if decisions.empty:
        raise FlywheelError(
            f"no decisions stored for {policy.name}: import some with "
            f"`flywheel decisions import FILE --policy {policy.name}`"
        )
    golden = lake.golden(policy.name)
    golden_ids = set(golden.frame["item_id"]) if golden is not None else set()
    flagged = _flagged_reviewers(policy, lake)
    trusted = decisions[~decisions["reviewer_id"].isin(flagged)]
    if trusted.empty:
        raise FlywheelError(
            f"every decision of {policy.name} is by a reviewer flagged by QA "
            f"({', '.join(sorted(flagged))}): nothing to train on "
            "(dataset.exclude_flagged_reviewers: false keeps them)"
        )
    in_golden = trusted["item_id"].isin(golden_ids)
    usable = trusted[~in_golden]
    if usable.empty:
        raise FlywheelError(
            f"every decided item of {policy.name} is in its golden set: nothing to train on"
        )

    # gold checks (decisions on golden items) pin the reviewers' reliability, then leave
    known = (
        golden.frame.set_index("item_id")["label"].eq(policy.labels.positive)
        if golden is not None
        else None
    )
    labels = aggregate_labels(trusted, policy, known)
    votes = _votes(trusted, known)
    fallbacks = labels.attrs.get("fallbacks", {})
    labels = labels[~labels["item_id"].isin(golden_ids)]
    frame = _items(usable, policy).merge(labels, on="item_id", validate="one_to_one")
    frame, split_rule = _split(frame, policy)
    frame = frame[
        ["item_id", "item_time", "split", *labels.columns.drop("item_id"), *policy.feature_columns]
    ]
    counts, thin = _check_trainable(frame, policy)
    label_rule = {"method": policy.dataset.aggregation, "tie_label": policy.dataset.tie_label}
    version = "d-" + content_hash(
        frame,
        extra={
            "split": split_rule,
            "labels": label_rule,
            "fields": policy.feature_columns,
            "excluded_reviewers": sorted(flagged),
            "votes": content_hash(votes),
        },
    )
    path = lake.dataset_dir(policy.name, version)
    if (path / "manifest.json").is_file():
        return DatasetVersion(
            policy.name, version, path, json.loads((path / "manifest.json").read_text())
        )

    manifest = {
        "version": version,
        "policy": policy.name,
        "built_at": utc_now().isoformat(),
        "items": len(frame),
        "counts": counts,
        "thin_splits": thin,
        "labels": {
            **label_rule,
            **fallbacks,
            "ties": int(frame["tie"].sum()),
            "multi_reviewed_items": int((frame["n_reviews"] > 1).sum()),
            "mean_agreement": round(float(frame["agreement"].mean()), 4),
        },
        "split": split_rule,
        "golden": {
            "version": golden.version if golden is not None else None,
            "excluded_items": int(trusted.loc[in_golden, "item_id"].nunique()),
            "excluded_decisions": int(in_golden.sum()),
        },
        "flagged_reviewers": {
            "excluded": sorted(flagged),
            "excluded_decisions": int(len(decisions) - len(trusted)),
            "decisions_removed": {
                reviewer: int(count)
                for reviewer, count in decisions["reviewer_id"]
                .loc[decisions["reviewer_id"].isin(flagged)]
                .value_counts()
                .sort_index()
                .items()
            },
        },
        "votes": {
            "file": VOTES_FILE,
            "votes": len(votes),
            "reviewers": int(votes["reviewer_id"].nunique()),
            "gold_checks": int(votes["known"].notna().sum()),
        },
        "source": {
            "decisions": len(decisions),
            "decision_files": len(lake.decision_files(policy.name)),
            "watermark_decided_at": _iso(decisions["decided_at"].max()),
            "watermark_ingested_at": _iso(decisions["ingested_at"].max()),
        },
        "fields": policy.fields.model_dump(),
    }
    with staged_directory(path) as staging:
        for name in SPLITS:
            write_parquet_atomic(
                frame[frame["split"] == name].reset_index(drop=True), staging / f"{name}.parquet"
            )
        write_parquet_atomic(votes, staging / VOTES_FILE)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return DatasetVersion(policy.name, version, path, manifest, created=True)


def load_dataset(policy: Policy, lake: Lake, version: str) -> DatasetVersion:
    path = lake.dataset_dir(policy.name, version)
    manifest = path / "manifest.json"
    if not manifest.is_file():
        known = ", ".join(lake.dataset_versions(policy.name)) or "none"
        raise FlywheelError(f"no dataset version {version!r} for {policy.name} (known: {known})")
    return DatasetVersion(policy.name, version, path, json.loads(manifest.read_text()))
