import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flywheel.errors import FlywheelError
from flywheel.records import read_table, validate_decisions, validate_golden, write_table


def _decisions(policy, n=3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "label": [policy.labels.positive] + [policy.labels.negative] * (n - 1),
            "reviewer_id": ["r1"] * n,
            "decided_at": ["2026-01-05T10:00:00Z", "2026-01-05T11:00:00+01:00", "2026-01-06"][:n],
            "text": ["free followers", "see you", None][:n],
            "account_age_days": ["3", "", "700.5"][:n],
            "links": [2, 0, 1][:n],
            "prior_reports": [1, 0, 0][:n],
            "messages_last_hour": [10, 1, 2][:n],
            "surface": ["dm", "post", "post"][:n],
            "country": ["US", "BR", "US"][:n],
        }
    )


def _validate(frame: pd.DataFrame, policy, tmp_path: Path, suffix: str = ".csv"):
    path = write_table(frame, tmp_path / f"in{suffix}")
    return validate_decisions(read_table(path), policy, source=path.name)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_all_formats_give_the_same_typed_rows(spam, tmp_path, suffix):
    frame = _validate(_decisions(spam), spam, tmp_path, suffix).frame
    assert frame["item_id"].tolist() == ["i0", "i1", "i2"]
    assert str(frame["decided_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["decided_at"].iloc[1] == pd.Timestamp("2026-01-05T10:00:00Z")
    assert frame["text"].tolist() == ["free followers", "see you", ""]
    assert frame["account_age_days"].isna().tolist() == [False, True, False]
    assert frame["source"].unique().tolist() == ["import"]


def test_missing_columns_are_named(spam, tmp_path):
    with pytest.raises(FlywheelError, match="missing columns: reviewer_id, surface"):
        _validate(_decisions(spam).drop(columns=["reviewer_id", "surface"]), spam, tmp_path)


def test_extra_columns_are_ignored_and_named(spam, tmp_path):
    result = _validate(_decisions(spam).assign(notes="x", shift="night"), spam, tmp_path)
    assert result.ignored_columns == ["notes", "shift"]
    assert "notes" not in result.frame


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("label", 1, "spammy", r"row 2, field 'label': 'spammy' is not one of the policy's labels"),
        (
            "decided_at",
            2,
            "yesterday",
            r"row 3, field 'decided_at': 'yesterday' is not an ISO 8601 date",
        ),
        ("decided_at", 0, "", r"row 1, field 'decided_at': '' is missing"),
        ("links", 1, "many", r"row 2, field 'links': 'many' is not a number"),
        ("item_id", 2, " ", r"row 3, field 'item_id': ' ' is missing"),
    ],
)
def test_a_bad_row_refuses_the_file_naming_row_and_field(
    spam, tmp_path, column, row, value, message
):
    frame = _decisions(spam).astype({column: object})
    frame.loc[row, column] = value
    with pytest.raises(FlywheelError, match=message) as caught:
        _validate(frame, spam, tmp_path)
    assert "nothing was imported" in str(caught.value)


def test_the_earliest_bad_row_is_reported_with_a_count(spam, tmp_path):
    frame = _decisions(spam)
    frame.loc[2, "label"] = "nope"
    frame.loc[1, "decided_at"] = "soon"
    with pytest.raises(FlywheelError, match=r"row 2, field 'decided_at'.*\(and 1 more bad row\)"):
        _validate(frame, spam, tmp_path)


def test_empty_files_are_refused(spam, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(FlywheelError, match="the file is empty"):
        read_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("item_id,label,reviewer_id,decided_at\n")
    with pytest.raises(FlywheelError, match="the file has no rows"):
        read_table(header_only)


def test_unreadable_files_are_refused(tmp_path):
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"item_id": "a"}\n{not json\n')
    with pytest.raises(FlywheelError, match="line 2 is not valid JSON"):
        read_table(jsonl)
    with pytest.raises(FlywheelError, match=r"unsupported file type '\.xlsx'"):
        read_table(tmp_path / "x.xlsx")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(FlywheelError, match="cannot be read as parquet"):
        read_table(broken)


def test_conflicting_duplicates_in_one_file_are_refused(spam, tmp_path):
    frame = _decisions(spam)
    twice = pd.concat(
        [frame, frame.iloc[[0]].assign(label=spam.labels.negative)], ignore_index=True
    )
    with pytest.raises(FlywheelError, match=r"row 4: the same decision .* appears earlier"):
        _validate(twice, spam, tmp_path)
    identical = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    assert len(_validate(identical, spam, tmp_path).frame) == 3


def test_golden_rows_need_one_label_per_item(spam, tmp_path):
    golden = _decisions(spam).drop(columns=["reviewer_id", "decided_at"])
    frame = validate_golden(
        read_table(write_table(golden, tmp_path / "g.csv")), spam, "g.csv"
    ).frame
    assert len(frame) == 3
    golden.loc[2, "item_id"] = "i0"
    with pytest.raises(FlywheelError, match=r"row 3: the same golden item \(item_id=i0\)"):
        validate_golden(read_table(write_table(golden, tmp_path / "g2.csv")), spam, "g2.csv")


def test_jsonl_written_is_json_lines(spam, tmp_path):
    path = write_table(_decisions(spam), tmp_path / "d.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["decided_at"] == "2026-01-05T10:00:00Z"


def test_items_for_scoring_are_typed_for_every_requested_policy(spam):
    from flywheel.policy import load_policy
    from flywheel.records import validate_item

    scam = load_policy("scam")
    item = {
        "item_id": 7,
        "text": "hi",
        "account_age_days": 3,
        "links": None,
        "prior_reports": 0,
        "messages_last_hour": 1.5,
        "surface": "dm",
        "country": None,
        "payment_requests": 2,
        "contacts_messaged": 4,
        "extra": "ignored",
    }
    row = validate_item(item, [spam, scam])
    assert row["item_id"] == "7" and row["country"] == "" and np.isnan(row["links"])
    assert row["payment_requests"] == 2.0 and "extra" not in row


SPAM_ITEM = {
    "item_id": "a",
    "text": "t",
    "account_age_days": 1,
    "links": 1,
    "prior_reports": 0,
    "messages_last_hour": 1,
    "surface": "dm",
    "country": "US",
}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"links": "many"}, "items[3].links", "expected a number, got 'many'"),
        ({"links": True}, "items[3].links", "expected a number, got True"),
        ({"surface": ["dm"]}, "items[3].surface", "expected a string"),
        ({"item_id": ""}, "items[3].item_id", "required: a non-empty string"),
        ({"text": None, "country": 5}, None, None),
    ],
)
def test_a_malformed_item_names_its_field(spam, change, field, message):
    from flywheel.records import ItemError, ItemValidator, validate_item

    item = {**SPAM_ITEM, **change}
    batch = [{**SPAM_ITEM, "item_id": f"b{i}"} for i in range(5)]
    batch[3] = item
    if field is None:
        assert validate_item(item, [spam], "items[3]")["country"] == "5"
        assert ItemValidator([spam]).many(batch)[3]["country"] == "5"
        return
    with pytest.raises(ItemError) as caught:
        validate_item(item, [spam], "items[3]")
    assert caught.value.field == field and message in str(caught.value)
    with pytest.raises(ItemError) as caught:
        ItemValidator([spam]).many(batch)
    assert caught.value.field == field and message in str(caught.value)


def test_a_batch_checked_by_field_gives_the_rows_of_item_by_item(spam):
    """The batch path converts the same values the same way, whatever mix of types a field
    has across items (ints, floats, nulls; ints and nulls in text fields)."""
    from flywheel.policy import load_policy
    from flywheel.records import ItemValidator

    scam = load_policy("scam")
    validate = ItemValidator([spam, scam])
    rng = np.random.default_rng(3)
    numbers = [0, 2, 1.5, None, -3.25, 10**6]
    texts = ["", "hi there", None, 7, "ünï"]
    batch = []
    for i in range(200):
        item = {"item_id": f"i{i}", "extra": i}
        for name, numeric, _ in validate.spec:
            pool = numbers if numeric else texts
            item[name] = pool[rng.integers(len(pool))]
        batch.append(item)
    expected = [validate(item, f"items[{i}]") for i, item in enumerate(batch)]
    got = validate._by_field(batch)
    assert got is not None, "mixed but valid types take the batch path"
    assert [sorted(r) for r in got] == [sorted(r) for r in expected]  # the same fields
    for a, b in zip(got, expected, strict=True):
        for name in a:
            assert type(a[name]) is type(b[name]), name
            assert a[name] == b[name] or (np.isnan(a[name]) and np.isnan(b[name])), name
    # items holding just the policy's fields are typed in place; extra fields are left out
    exact = [{**SPAM_ITEM, "item_id": f"c{i}"} for i in range(3)]
    typed = ItemValidator([spam]).many(exact)
    assert typed[2]["links"] == 1.0 and type(typed[2]["links"]) is float
    extra = [{**item, "note": "x"} for item in exact]
    assert ItemValidator([spam]).many(extra) == typed


def test_a_missing_field_is_named_with_its_policy(spam):
    from flywheel.records import ItemError, validate_item

    with pytest.raises(ItemError, match=r"item\.country: required by policy spam"):
        validate_item(
            {k: v for k, v in SPAM_ITEM.items() if k != "country"},
            [spam],
        )
    with pytest.raises(ItemError, match="item: expected a JSON object"):
        validate_item(["not", "an", "object"], [spam])


def test_a_text_over_the_limit_is_refused_naming_item_and_field(spam):
    from flywheel.records import ItemError, ItemValidator

    item = {"item_id": "m1", **{f: 1 for f in spam.fields.numeric}}
    item |= {f: "dm" for f in spam.fields.categorical} | {"text": "x" * 101}
    validate = ItemValidator([spam], max_text_chars=100)
    with pytest.raises(ItemError, match=r"items\[1\]\.text: longer than 100 characters"):
        validate.many([{**item, "text": "short"}, item])
    assert validate.many([{**item, "text": "x" * 100}])[0]["text"] == "x" * 100


def test_a_whole_number_is_the_same_category_however_it_arrives(spam):
    """JSON does not tell 275 from 275.0, nor pandas a column of integers with a blank from
    floats: both are the category "275", in a request and in a file. A fraction is no category."""
    from flywheel.records import ItemError, ItemValidator, _as_text

    check = ItemValidator([spam])
    for sent in (275, 275.0):
        assert check({**SPAM_ITEM, "surface": sent})["surface"] == "275"
        assert check({**SPAM_ITEM, "item_id": sent})["item_id"] == "275"
    assert _as_text(pd.Series([275.0, None])).tolist() == ["275", ""]
    with pytest.raises(ItemError, match=r"surface: expected a string, got 2\.5"):
        check({**SPAM_ITEM, "surface": 2.5})
    with pytest.raises(ItemError, match="expected a string"):
        check({**SPAM_ITEM, "surface": 1e30})  # beyond what a JSON integer carries here
