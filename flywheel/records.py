"""Record schemas and the validation every incoming file goes through.

Files arrive as CSV, Parquet or JSON Lines (docs/architecture.md, "Files that come in"). They are read,
checked column by column with vectorised masks (so 200k rows take well under a second), and
either returned whole as typed frames or refused whole with the first bad row and field named.
Row numbers count data rows from 1, so row 1 is the first line under a CSV header.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel.errors import FlywheelError
from flywheel.files import atomic_path
from flywheel.policy import Policy

DECISION_REQUIRED = ("item_id", "label", "reviewer_id", "decided_at")
DECISION_OPTIONAL = ("created_at", "source", "lead_time_s", "task_id", "annotation_id")
GOLDEN_REQUIRED = ("item_id", "label")
GOLDEN_OPTIONAL = ("created_at",)
DECISION_SOURCES = ("review", "explore", "audit", "gold", "appeal", "import")
SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class Validated:
    """A file that passed validation: typed rows, and the columns that were ignored."""

    frame: pd.DataFrame
    ignored_columns: list[str] = field(default_factory=list)


class _Problems:
    """Collects per-field masks of bad rows and reports the earliest one."""

    def __init__(self, source: str, n_rows: int) -> None:
        self.source = source
        self.first: tuple[int, str] | None = None
        self.bad = np.zeros(n_rows, dtype=bool)

    def add(self, mask: np.ndarray, column: str, values: pd.Series, why: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        row = int(np.argmax(mask))
        if self.first is None or row < self.first[0]:
            self.first = (row, f"field {column!r}: {values.iloc[row]!r} {why}")
        self.bad |= mask

    def raise_if_any(self) -> None:
        if self.first is None:
            return
        row, message = self.first
        others = int(self.bad.sum()) - 1
        more = f" (and {others} more bad row{'s' if others > 1 else ''})" if others > 0 else ""
        raise FlywheelError(f"{self.source}: row {row + 1}, {message}{more}; nothing was imported")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON Lines file into raw columns; a file with no rows is refused."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise FlywheelError(
            f"{path}: unsupported file type {path.suffix!r} (use .csv, .parquet or .jsonl)"
        )
    if not path.is_file():
        raise FlywheelError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FlywheelError(f"{path}: the file is empty")
    try:
        if kind == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _read_jsonl(path)
    except FlywheelError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FlywheelError(f"{path}: cannot be read as {kind}: {reason}") from exc
    if frame.empty:
        raise FlywheelError(f"{path}: the file has no rows")
    return frame.reset_index(drop=True)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as CSV, Parquet or JSON Lines by the file's suffix, atomically.

    Timestamps are written as ISO 8601 text in CSV and JSON Lines so that `read_table` and any
    other tool read them back unchanged.
    """
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise FlywheelError(
            f"{path}: unsupported file type {path.suffix!r} (use .csv, .parquet or .jsonl)"
        )
    if kind != "parquet":
        frame = frame.copy()
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = pd.to_datetime(frame[column], utc=True).dt.strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                )
    with atomic_path(path) as tmp:
        if kind == "csv":
            frame.to_csv(tmp, index=False)
        elif kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True)
    return path


def _read_jsonl(path: Path) -> pd.DataFrame:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FlywheelError(f"{path}: line {number} is not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise FlywheelError(f"{path}: line {number} is not a JSON object")
            rows.append(row)
    return pd.DataFrame(rows)


def _blank(values: pd.Series) -> np.ndarray:
    return (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()


def _integral(value: object) -> bool:
    """A float that is a whole number a JSON integer could carry (64 bits): JSON does not
    tell 275 from 275.0, and neither do pandas columns of integers with a blank."""
    return isinstance(value, float) and value.is_integer() and -(2**63) <= value < 2**64


def _as_text(values: pd.Series) -> pd.Series:
    """The one typing rule of text and categories, for a column (`_text` for one value)."""
    # only floats can be whole numbers: a column of strings (the usual one) skips the pass
    if values.dtype.kind == "f" or (
        values.dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=True) != "string"
    ):
        whole = [int(v) if _integral(v) else v for v in values]
        values = pd.Series(whole, index=values.index, dtype=object)
    return values.where(values.notna(), "").astype(str).str.strip()


def _text(value: object) -> str:
    """The one typing rule of text and categories, for one value: as `_as_text` types it."""
    if value is None:
        return ""
    return str(int(value) if _integral(value) else value).strip()


def _as_timestamps(
    values: pd.Series, column: str, problems: _Problems, required: bool
) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        text = _as_text(values)
        parsed = pd.to_datetime(
            text.where(text != "", None), format="ISO8601", utc=True, errors="coerce"
        )
        problems.add(
            parsed.isna().to_numpy() & (text != "").to_numpy(),
            column,
            values,
            "is not an ISO 8601 date",
        )
    if required:
        problems.add(_blank(values), column, values, "is missing")
    return parsed


def _as_numbers(values: pd.Series, column: str, problems: _Problems) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        problems.add(np.ones(len(values), dtype=bool), column, values, "is not a number")
        return values.astype(float)
    parsed = pd.to_numeric(values.where(~_blank(values), None), errors="coerce").astype(float)
    problems.add(parsed.isna().to_numpy() & ~_blank(values), column, values, "is not a number")
    problems.add(np.isinf(parsed.to_numpy()), column, values, "is not a finite number")
    return parsed


def _check_columns(
    raw: pd.DataFrame, required: tuple[str, ...], known: set[str], source: str
) -> list[str]:
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise FlywheelError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
        )
    return [str(c) for c in raw.columns if c not in known]


def feature_frame(
    raw: pd.DataFrame, policy: Policy, problems: _Problems | None = None
) -> pd.DataFrame:
    """The policy's fields with the types the model expects: text and categories as strings
    (missing as ''), numbers as floats (missing as NaN). Used for files, training and scoring."""
    problems = problems or _Problems("input", len(raw))
    out = {}
    for name in policy.fields.text + policy.fields.categorical:
        out[name] = _as_text(raw[name]) if name in raw else pd.Series("", index=raw.index)
    for name in policy.fields.numeric:
        out[name] = (
            _as_numbers(raw[name], name, problems)
            if name in raw
            else pd.Series(np.nan, index=raw.index)
        )
    return pd.DataFrame(out, index=raw.index)[policy.feature_columns]


def _required_text(raw: pd.DataFrame, name: str, problems: _Problems) -> pd.Series:
    values = _as_text(raw[name])
    problems.add(values.eq("").to_numpy(), name, raw[name], "is missing")
    return values


def _common(raw: pd.DataFrame, policy: Policy, problems: _Problems) -> dict[str, pd.Series]:
    item_id = _required_text(raw, "item_id", problems)
    label = _as_text(raw["label"])
    allowed = {policy.labels.positive, policy.labels.negative}
    problems.add(
        ~label.isin(allowed).to_numpy(),
        "label",
        raw["label"],
        f"is not one of the policy's labels ({policy.labels.positive}, {policy.labels.negative})",
    )
    columns = {"item_id": item_id, "label": label}
    if "created_at" in raw:
        columns["created_at"] = _as_timestamps(
            raw["created_at"], "created_at", problems, required=False
        )
    else:
        columns["created_at"] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    return columns


def validate_decisions(raw: pd.DataFrame, policy: Policy, source: str) -> Validated:
    """Check a file of reviewer decisions against the file contract and the policy."""
    known = {*DECISION_REQUIRED, *DECISION_OPTIONAL, *policy.feature_columns}
    ignored = _check_columns(raw, (*DECISION_REQUIRED, *policy.feature_columns), known, source)
    problems = _Problems(source, len(raw))
    columns = _common(raw, policy, problems)
    columns["reviewer_id"] = _required_text(raw, "reviewer_id", problems)
    columns["decided_at"] = _as_timestamps(raw["decided_at"], "decided_at", problems, required=True)
    if "source" in raw:
        src = _as_text(raw["source"]).replace("", "import")
        problems.add(
            ~src.isin(DECISION_SOURCES).to_numpy(),
            "source",
            raw["source"],
            f"is not one of {', '.join(DECISION_SOURCES)}",
        )
    else:
        src = pd.Series("import", index=raw.index)
    columns["source"] = src
    if "lead_time_s" in raw:
        lead = _as_numbers(raw["lead_time_s"], "lead_time_s", problems)
        problems.add((lead < 0).to_numpy(), "lead_time_s", raw["lead_time_s"], "is negative")
    else:
        lead = pd.Series(np.nan, index=raw.index)
    columns["lead_time_s"] = lead
    for name in ("task_id", "annotation_id"):
        columns[name] = _as_text(raw[name]) if name in raw else pd.Series("", index=raw.index)
    features = feature_frame(raw, policy, problems)
    problems.raise_if_any()
    frame = pd.concat([pd.DataFrame(columns), features], axis=1)
    _refuse_conflicts(frame, ["item_id", "reviewer_id", "decided_at"], source, "decision")
    return Validated(frame.drop_duplicates(ignore_index=True), ignored)


def validate_golden(raw: pd.DataFrame, policy: Policy, source: str) -> Validated:
    """Check a golden-set file: one expert label per item, with the policy's fields."""
    known = {*GOLDEN_REQUIRED, *GOLDEN_OPTIONAL, *policy.feature_columns}
    ignored = _check_columns(raw, (*GOLDEN_REQUIRED, *policy.feature_columns), known, source)
    problems = _Problems(source, len(raw))
    columns = _common(raw, policy, problems)
    features = feature_frame(raw, policy, problems)
    problems.raise_if_any()
    frame = pd.concat([pd.DataFrame(columns), features], axis=1)
    _refuse_conflicts(frame, ["item_id"], source, "golden item")
    return Validated(frame.drop_duplicates(ignore_index=True), ignored)


def validate_items(raw: pd.DataFrame, policy: Policy, source: str) -> pd.DataFrame:
    """Check a file of items to score: an id and the policy's fields, each of the right kind."""
    _check_columns(raw, ("item_id", *policy.feature_columns), set(), source)
    problems = _Problems(source, len(raw))
    item_id = _required_text(raw, "item_id", problems)
    features = feature_frame(raw, policy, problems)
    problems.raise_if_any()
    return pd.concat([item_id.rename("item_id"), features], axis=1)


def _refuse_conflicts(frame: pd.DataFrame, key: list[str], source: str, what: str) -> None:
    """The same key twice in one file with different content is ambiguous: refuse the file."""
    conflict = frame.duplicated(key) & ~frame.duplicated()
    if not conflict.any():
        return
    row = int(np.argmax(conflict.to_numpy()))
    ident = ", ".join(f"{k}={frame.iloc[row][k]}" for k in key)
    raise FlywheelError(
        f"{source}: row {row + 1}: the same {what} ({ident}) appears earlier with different "
        "values; nothing was imported"
    )


class ItemError(ValueError):
    """An item sent for scoring breaks the policy's schema; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def validate_item(raw: object, policies: list[Policy], where: str = "item") -> dict:
    """One item for scoring, typed for every requested policy's fields (see `ItemValidator`)."""
    return ItemValidator(policies)(raw, where)


_NUMBER_TYPES = {int, float, type(None)}
_TEXT_TYPES = {str, int, type(None)}


class ItemValidator:
    """A check of items for scoring against some policies: one item, or a batch of them.

    Every field of every requested policy must be present (a triage system that forgot one
    should hear so, not get a score computed without it); `null` means unknown. Text and
    categories become strings without surrounding blanks (unknown: ''), as a file's do (one
    rule: `_text`, `_as_text`), numbers floats (unknown: NaN), text no longer than
    `max_text_chars` when given (the API's `FLYWHEEL_MAX_TEXT_CHARS`: a megabyte of one field
    costs the scorer for nothing). The fields are read
    off the policies once, not per item: a batch checks thousands of items.
    """

    def __init__(self, policies: list[Policy], max_text_chars: int | None = None) -> None:
        self.max_text_chars = max_text_chars if max_text_chars is not None else float("inf")
        fields: dict[str, tuple[bool, str]] = {}  # name -> (numeric, first policy asking)
        for policy in policies:
            numeric = set(policy.fields.numeric)
            for name in policy.feature_columns:
                if name != "item_id":
                    fields.setdefault(name, (name in numeric, policy.name))
        self.spec = [(name, numeric, owner) for name, (numeric, owner) in fields.items()]
        self.names = ["item_id", *fields]

    def __call__(self, raw: object, where: str = "item") -> dict:
        if not isinstance(raw, dict):
            raise ItemError(where, "expected a JSON object")
        item_id = raw.get("item_id")
        if _integral(item_id):  # a whole number, as JSON may write it: 42.0 is 42
            item_id = int(item_id)
        if (
            isinstance(item_id, bool)
            or not isinstance(item_id, str | int)
            or str(item_id).strip() == ""
        ):
            raise ItemError(f"{where}.item_id", "required: a non-empty string")
        row: dict = {"item_id": str(item_id)}
        for name, numeric, owner in self.spec:
            if name not in raw:
                raise ItemError(f"{where}.{name}", f"required by policy {owner}")
            value = raw[name]
            allowed = (int, float) if numeric else (str, int)
            if value is not None and (
                isinstance(value, bool)
                or not (isinstance(value, allowed) or (not numeric and _integral(value)))
            ):
                expected = "a number" if numeric else "a string"
                raise ItemError(f"{where}.{name}", f"expected {expected}, got {value!r}")
            row[name] = self._typed(value, numeric)
            if not numeric and len(row[name]) > self.max_text_chars:
                raise ItemError(
                    f"{where}.{name}", f"longer than {self.max_text_chars:,} characters"
                )
        return row

    def many(self, items: list, where: str = "items") -> list[dict]:
        """A batch, the same rows as item by item. Checked a field at a time over all items
        (a type test per field, not per value), which is what a batch of a thousand needs;
        a batch that fails it is checked item by item, so the error names the first bad one."""
        rows = self._by_field(items)
        if rows is None:
            rows = [self(item, f"{where}[{i}]") for i, item in enumerate(items)]
        return rows

    def _by_field(self, items: list) -> list[dict] | None:
        """The rows, or None when some item needs checking on its own. Items that hold just
        the fields asked for are kept as rows (typed in place), which is most of the saving."""
        if set(map(type, items)) != {dict}:
            return None
        columns: list[list] = []
        typed: list[tuple[str, list]] = []  # fields whose values had to be converted
        try:
            ids = list(map(operator.itemgetter("item_id"), items))
            if set(map(type, ids)) != {str} or not all(map(str.strip, ids)):
                return None
            columns.append(ids)
            for name, numeric, _ in self.spec:
                values = list(map(operator.itemgetter(name), items))
                kinds = set(map(type, values))
                if kinds != ({float} if numeric else {str}):
                    if not kinds <= (_NUMBER_TYPES if numeric else _TEXT_TYPES):
                        return None
                    values = [self._typed(v, numeric) for v in values]
                    typed.append((name, values))
                elif not numeric:
                    stripped = list(map(str.strip, values))
                    if stripped != values:
                        values = stripped
                        typed.append((name, values))
                if not numeric and max(map(len, values), default=0) > self.max_text_chars:
                    return None  # the item by item check names the first one too long
                columns.append(values)
        except KeyError:
            return None
        if set(map(len, items)) == {len(self.names)}:  # every field present, nothing else
            for name, values in typed:
                for item, value in zip(items, values, strict=True):
                    item[name] = value
            return items
        names = self.names
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    @staticmethod
    def _typed(value: object, numeric: bool) -> float | str:
        """An accepted value as the scorer reads it; one rule for single items, batches and
        files."""
        if numeric:
            return float("nan") if value is None else float(value)
        return _text(value)
