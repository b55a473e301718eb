import os

import numpy as np
import pandas as pd
import pytest

from flywheel.errors import FlywheelError
from flywheel.files import staged_directory
from flywheel.lake import Lake, content_hash, write_parquet_atomic
from flywheel.records import validate_decisions, validate_golden


def test_a_failed_write_leaves_the_old_file_readable(tmp_path, monkeypatch):
    path = tmp_path / "table.parquet"
    write_parquet_atomic(pd.DataFrame({"a": [1, 2]}), path)

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(pd.DataFrame({"a": [3]}), path)
    assert pd.read_parquet(path)["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"], (
        "no temporary file left behind"
    )


def test_a_failed_staged_directory_publishes_nothing(tmp_path):
    final = tmp_path / "datasets" / "v1"
    with pytest.raises(RuntimeError), staged_directory(final) as staging:
        (staging / "train.parquet").write_text("half")
        raise RuntimeError("crash mid-build")
    assert not final.exists()
    assert list(final.parent.iterdir()) == []


def test_content_hash_is_stable_and_sensitive():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert content_hash(frame) == content_hash(frame.copy())
    assert content_hash(frame) != content_hash(frame.assign(b=["x", "z"]))
    assert content_hash(frame, extra={"rule": 1}) != content_hash(frame, extra={"rule": 2})
    assert content_hash(frame) != content_hash(frame.iloc[::-1])  # row order counts
    assert content_hash(frame.assign(b=["xy", ""])) != content_hash(frame.assign(b=["x", "y"]))


KNOWN = pd.DataFrame(
    {
        "item_id": ["i1", "i|2"],
        "label": ["violating", None],
        "score": [0.25, np.nan],
        "links": [3, 0],
        "at": pd.to_datetime(
            ["2026-01-05T10:00:00Z", "2026-01-06T11:30:00.500Z"], format="ISO8601"
        ),
        "flag": [True, False],
    }
)


def test_content_ids_are_pinned_across_releases_and_dtypes():
    """Dataset and golden versions and the training key are these hashes: the same content
    keeps its id whatever pandas release or dtype holds it (the ids were computed once with
    the encoding rule and must never change without a migration)."""
    assert content_hash(KNOWN) == "e1df6cbe7d1351d2"
    assert content_hash(KNOWN, extra={"split": {"rule": "time"}}) == "53639571997b9257"
    other_dtypes = KNOWN.assign(
        item_id=KNOWN["item_id"].astype("string"),
        label=KNOWN["label"].astype("category"),
        links=KNOWN["links"].astype("Int64"),
        at=KNOWN["at"].dt.tz_convert("Europe/Paris").dt.as_unit("us"),
    )
    assert content_hash(other_dtypes) == "e1df6cbe7d1351d2"


def _decisions(spam, labels):
    raw = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(len(labels))],
            "label": labels,
            "reviewer_id": "r1",
            "decided_at": "2026-01-05T10:00:00Z",
            **{f: "1" for f in spam.feature_columns},
        }
    )
    return validate_decisions(raw, spam, "file.csv").frame


def test_decisions_are_stored_once(tmp_path, spam):
    lake = Lake(tmp_path)
    frame = _decisions(spam, ["violating", "benign"])
    first = lake.append_decisions("spam", frame, "file.csv")
    again = lake.append_decisions("spam", frame, "file.csv")
    assert (first.added, first.already_present) == (2, 0)
    assert (again.added, again.already_present, again.part) == (0, 2, None)
    assert len(lake.decision_files("spam")) == 1
    assert len(lake.decisions("spam")) == 2


def test_a_decision_stored_with_another_label_refuses_the_file(tmp_path, spam):
    lake = Lake(tmp_path)
    lake.append_decisions("spam", _decisions(spam, ["violating"]), "a.csv")
    changed = pd.concat([_decisions(spam, ["benign", "benign"])])
    with pytest.raises(
        FlywheelError,
        match=r"b.csv: row 1: decision on item i0 .* already stored with label 'violating'",
    ):
        lake.append_decisions("spam", changed, "b.csv")
    stored = lake.decisions("spam")
    assert stored["item_id"].tolist() == ["i0"], "the new item i1 was not stored either"


def test_golden_versions_grow_and_refuse_conflicts(tmp_path, spam):
    lake = Lake(tmp_path)
    assert lake.golden("spam") is None
    raw = pd.DataFrame(
        {
            "item_id": ["g1", "g2"],
            "label": ["violating", "benign"],
            **{f: "1" for f in spam.feature_columns},
        }
    )
    first = lake.import_golden("spam", validate_golden(raw, spam, "g.csv").frame, "g.csv")
    same = lake.import_golden("spam", validate_golden(raw, spam, "g.csv").frame, "g.csv")
    assert same.version == first.version and same.added == 0
    more = raw.assign(item_id=["g3", "g2"])
    grown = lake.import_golden("spam", validate_golden(more, spam, "h.csv").frame, "h.csv")
    assert grown.version != first.version and (grown.added, grown.total) == (1, 3)
    assert lake.golden("spam").version == grown.version
    flipped = raw.assign(label=["benign", "benign"])
    with pytest.raises(
        FlywheelError, match=r"row 1, field 'label': golden item g1 is already stored"
    ):
        lake.import_golden("spam", validate_golden(flipped, spam, "f.csv").frame, "f.csv")
    assert lake.golden("spam").version == grown.version


def test_a_retraction_hides_what_was_stored_before_it_not_a_later_answer(tmp_path, spam):
    """Answered, then skipped (retracted), then answered again under the same annotation id."""
    lake = Lake(tmp_path)
    first = _decisions(spam, ["violating", "benign"]).assign(annotation_id=["a1", "a2"])
    lake.append_decisions("spam", first, "Label Studio")
    assert lake.retract_annotations("spam", ["a1"]) == 1
    assert lake.decisions("spam")["annotation_id"].tolist() == ["a2"]

    later = first.iloc[[0]].assign(
        label="benign", decided_at=first["decided_at"].iloc[0] + pd.Timedelta(hours=1)
    )
    assert lake.append_decisions("spam", later, "Label Studio").added == 1
    stored = lake.decisions("spam").sort_values("annotation_id")
    assert stored[["annotation_id", "label"]].values.tolist() == [
        ["a1", "benign"],
        ["a2", "benign"],
    ]
    # deleted again: the answer stored since then goes too, and only it was counted
    assert lake.retract_annotations("spam", ["a1"]) == 1
    assert lake.decisions("spam")["annotation_id"].tolist() == ["a2"]


def test_decision_keys_do_not_run_into_each_other(tmp_path, spam):
    """`a|b` by `c` and `a` by `b|c` at the same time are two decisions, each stored once."""
    lake = Lake(tmp_path)
    frame = _decisions(spam, ["violating", "benign"]).assign(
        item_id=["a|b", "a"], reviewer_id=["c", "b|c"]
    )
    assert lake.append_decisions("spam", frame, "file.csv").added == 2
    again = lake.append_decisions("spam", frame, "file.csv")
    assert (again.added, again.already_present) == (0, 2)
    assert sorted(lake.decisions("spam")["item_id"]) == ["a", "a|b"]


def test_decisions_stored_under_the_earlier_id_rule_are_still_recognised(tmp_path, spam):
    lake = Lake(tmp_path)
    frame = _decisions(spam, ["violating", "benign"])
    lake.append_decisions("spam", frame, "file.csv")
    part = lake.decision_files("spam")[0]
    stored = pd.read_parquet(part)
    write_parquet_atomic(stored.assign(decision_id=["old-1", "old-2"]), part)
    again = lake.append_decisions("spam", frame, "file.csv")
    assert (again.added, again.already_present) == (0, 2)
