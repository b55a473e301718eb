"""The lake: Parquet files under `FLYWHEEL_HOME/lake`, queried with DuckDB.

Layout (one folder per policy):

    decisions/<policy>/part-<hash>.parquet        append-only import batches
    decisions/<policy>/retracted/part-<hash>.parquet   Label Studio annotations deleted since
    golden/<policy>/<version>.parquet             immutable golden-set versions
    golden/<policy>/CURRENT.json                  which golden version is current
    datasets/<policy>/<version>/                  immutable dataset versions (splits, votes, manifest)
    training/<policy>/labelled_scores.parquet     the latest version's held-out scores of labelled items
    labeling/<policy>/tasks/part-<hash>.parquet   every task pushed to Label Studio (the ledger)
    labeling/<policy>/pending/<hash>.parquet      tasks being imported (written before, dropped after)
    labeling/<policy>/state.json                  project id and the pull watermark
    labeling/<policy>/qa.json                     the latest reviewer-quality report
    automation/<policy>/verdicts/part-<hash>.parquet   automated reviewers' answers (never decisions)
    automation/<policy>/cache/<reviewer>.sqlite   the llm reviewers' answers, by model, prompt and item

Every write goes to a hidden temporary name in the same folder and is renamed into place, so a
crash leaves either the old state or the new one, never a half-written file. Writers of one
policy hold a lock, so two imports at once cannot both decide a row is new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from flywheel import clock
from flywheel.errors import FlywheelError
from flywheel.files import atomic_path, file_lock, write_json_atomic


def content_hash(*frames: pd.DataFrame, extra: Any = None, length: int = 16) -> str:
    """A hash of frames' columns and values (row order included, index not) and of `extra`.

    Versions of datasets and golden sets and the training key are such hashes, so the same
    content must keep its id across library releases: values are encoded by a fixed rule of our
    own (`_column_bytes`), not by pandas' hashing, whose output has changed between releases."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(json.dumps([str(c) for c in frame.columns]).encode())
        for _, column in frame.items():
            digest.update(_column_bytes(column))
    if extra is not None:
        digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:length]


def _column_bytes(column: pd.Series) -> bytes:
    """One column's values in a canonical encoding: a kind tag, then booleans as bytes, integers
    as little-endian int64, other numbers as float64 (one NaN pattern for every missing value),
    timestamps as UTC nanoseconds, everything else as length-prefixed UTF-8 text."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) and not column.isna().any():
        return b"b" + column.to_numpy(dtype=np.uint8).tobytes()
    if pd.api.types.is_integer_dtype(dtype) and not column.isna().any():
        return b"i" + column.to_numpy(dtype="<i8").tobytes()
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype="<f8", na_value=np.nan)
        return b"f" + np.where(np.isnan(values), np.nan, values).astype("<f8").tobytes()
    if pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = pd.to_datetime(column, utc=True)
        nanos = stamps.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view("<i8")
        return b"t" + np.where(stamps.isna(), np.iinfo(np.int64).min, nanos).tobytes()
    parts = [b"s"]
    for value in column.astype(object):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            parts.append(b"\xff\xff\xff\xff")
        else:
            text = str(value).encode()
            parts += [len(text).to_bytes(4, "little"), text]
    return b"".join(parts)


def uniform_draw(keys: pd.Series, salt: str) -> np.ndarray:
    """A reproducible U(0, 1) number per key: the same key and salt always draw the same."""
    digests = [hashlib.blake2b(f"{salt}|{k}".encode(), digest_size=8).digest() for k in keys]
    return np.array([int.from_bytes(d, "big") for d in digests], dtype=np.float64) / 2.0**64


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def utc_now() -> datetime:
    """The platform's present moment: the wall clock, or a simulation's (`flywheel.clock`)."""
    return clock.now()


@dataclass(frozen=True)
class DecisionImport:
    added: int
    already_present: int
    part: Path | None


@dataclass(frozen=True)
class GoldenImport:
    version: str
    added: int
    already_present: int
    total: int


@dataclass(frozen=True)
class GoldenSet:
    version: str
    frame: pd.DataFrame


class Lake:
    """Reads and writes the Parquet lake of one Flywheel home."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, kind: str, policy: str) -> Path:
        return self.root / kind / policy

    @contextmanager
    def lock(self, policy: str, what: str = "lake", wait: bool = True) -> Iterator[bool]:
        """Serialise the writers of one policy's lake (readers never wait: files are
        immutable), or, by `what`, one policy's pushes or promotions. With `wait=False` it
        yields False at once when another process holds it."""
        name = policy if what == "lake" else f"{what}-{policy}"
        with file_lock(self.lock_path(name), wait=wait) as held:
            yield held

    @staticmethod
    def query(sql: str, **tables: Any) -> pd.DataFrame:
        """Run DuckDB SQL over named frames or Parquet relations; timestamps stay UTC-aware."""
        con = duckdb.connect()
        try:
            for name, table in tables.items():
                con.register(name, table)
            return con.sql(sql).to_arrow_table().to_pandas()
        finally:
            con.close()

    @staticmethod
    def read_parquet(files: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
        """Read Parquet files as one frame; files written by older imports may lack columns."""
        con = duckdb.connect()
        try:
            relation = con.read_parquet([str(f) for f in files], union_by_name=True)
            if columns is not None:
                relation = relation.select(*columns)
            return relation.to_arrow_table().to_pandas()
        finally:
            con.close()

    # decisions ---------------------------------------------------------------------------

    def decision_files(self, policy: str) -> list[Path]:
        return sorted(self._dir("decisions", policy).glob("part-*.parquet"))

    def decisions(self, policy: str) -> pd.DataFrame:
        """Stored decisions of a policy, less those whose annotation was retracted after they
        were stored (an annotation skipped, then answered again, counts again)."""
        files = self.decision_files(policy)
        if not files:
            return pd.DataFrame()
        frame = self.read_parquet(files)
        retractions = self.retractions(policy)
        if not retractions.empty and "annotation_id" in frame:
            last = retractions.groupby("annotation_id")["retracted_at"].max()
            retracted_at = frame["annotation_id"].map(last)
            hidden = retracted_at.notna() & (retracted_at >= frame["ingested_at"])
            frame = frame[~hidden].reset_index(drop=True)
        return frame

    def retractions(self, policy: str) -> pd.DataFrame:
        """Every retraction of an annotation, with when it was noticed."""
        files = sorted(self._dir("decisions", policy).glob("retracted/part-*.parquet"))
        if not files:
            return pd.DataFrame({"annotation_id": [], "retracted_at": []})
        return self.read_parquet(files, ["annotation_id", "retracted_at"])

    def retract_annotations(self, policy: str, annotation_ids: list[str]) -> int:
        """Retract the decisions stored so far of annotations deleted (or turned into skips) in
        Label Studio; a decision the same annotation gets later is not retracted by this."""
        new = sorted(set(annotation_ids))
        if not new:
            return 0
        with self.lock(policy):
            frame = pd.DataFrame({"annotation_id": new, "retracted_at": pd.Timestamp(utc_now())})
            part = f"part-{content_hash(frame)}.parquet"
            write_parquet_atomic(frame, self._dir("decisions", policy) / "retracted" / part)
        return len(new)

    def append_decisions(self, policy: str, frame: pd.DataFrame, source: str) -> DecisionImport:
        """Store decisions not stored before; a decision stored with other values is refused."""
        frame = frame.assign(decision_id=_decision_ids(policy, frame))
        with self.lock(policy):
            files = self.decision_files(policy)
            stored = (
                self.read_parquet(files, ["item_id", "reviewer_id", "decided_at", "label"])
                if files
                else frame.iloc[0:0]
            )
            # ids are derived again from what they identify, so parts written under an
            # earlier id rule still match
            stored = stored.assign(decision_id=_decision_ids(policy, stored))[
                ["decision_id", "label"]
            ]
            known = frame.merge(stored, on="decision_id", how="inner", suffixes=("", "_stored"))
            changed = known[known["label"] != known["label_stored"]]
            if not changed.empty:
                first = changed.iloc[0]
                row = int(frame.index[frame["decision_id"] == first["decision_id"]][0]) + 1
                raise FlywheelError(
                    f"{source}: row {row}: decision on item {first['item_id']} by "
                    f"{first['reviewer_id']} at {first['decided_at']} is already stored with label "
                    f"{first['label_stored']!r}; nothing was imported"
                )
            new = frame[~frame["decision_id"].isin(stored["decision_id"])]
            if new.empty:
                return DecisionImport(0, len(frame), None)
            new = new.assign(policy=policy, ingested_at=pd.Timestamp(utc_now()))
            part = (
                self._dir("decisions", policy)
                / f"part-{content_hash(new.drop(columns='ingested_at'))}.parquet"
            )
            write_parquet_atomic(new, part)
            return DecisionImport(len(new), len(frame) - len(new), part)

    # automated reviewers -----------------------------------------------------------------

    def verdicts(self, policy: str) -> pd.DataFrame:
        """Every answer automated reviewers gave (or failed to give) on a policy's tasks. They
        are kept apart from decisions, so nothing an automated reviewer says is read as a
        person's decision (empty frame when none)."""
        files = sorted(self._dir("automation", policy).glob("verdicts/part-*.parquet"))
        return self.read_parquet(files) if files else pd.DataFrame()

    def answer_cache(self, policy: str) -> Path:
        """Where the llm reviewers keep the answers they were paid for."""
        return self._dir("automation", policy) / "cache"

    def record_verdicts(self, policy: str, frame: pd.DataFrame) -> Path:
        part = f"part-{content_hash(frame)}.parquet"
        path = self._dir("automation", policy) / "verdicts" / part
        write_parquet_atomic(frame, path)
        return path

    # labeling ----------------------------------------------------------------------------

    def pushed_tasks(self, policy: str) -> pd.DataFrame:
        """Every task pushed to Label Studio for a policy (empty frame when none)."""
        files = sorted(self._dir("labeling", policy).glob("tasks/part-*.parquet"))
        return self.read_parquet(files) if files else pd.DataFrame()

    def record_pushed(self, policy: str, frame: pd.DataFrame) -> Path:
        part = self._dir("labeling", policy) / "tasks" / f"part-{content_hash(frame)}.parquet"
        write_parquet_atomic(frame, part)
        return part

    def write_push_intent(self, policy: str, frame: pd.DataFrame) -> Path:
        """Record tasks about to be imported, before the import: if the import's answer is
        lost or the process dies, the next push or pull finds them in Label Studio by their
        keys and records them in the ledger."""
        path = self._dir("labeling", policy) / "pending" / f"{content_hash(frame)}.parquet"
        write_parquet_atomic(frame, path)
        return path

    def push_intents(self, policy: str) -> list[tuple[Path, pd.DataFrame]]:
        """Imports begun and not recorded yet, oldest first."""
        folder = self._dir("labeling", policy) / "pending"
        paths = sorted(folder.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
        return [(path, pd.read_parquet(path)) for path in paths]

    def record_escalations(self, policy: str, frame: pd.DataFrame) -> Path:
        """Tasks moved to the head of their queue as they neared their SLA (task_id, item_id,
        review_queue, age_hours, escalated_at): the push escalates, monitoring alerts."""
        part = self._dir("labeling", policy) / "escalations" / f"part-{content_hash(frame)}.parquet"
        write_parquet_atomic(frame, part)
        return part

    def escalations(self, policy: str) -> pd.DataFrame:
        files = sorted(self._dir("labeling", policy).glob("escalations/part-*.parquet"))
        if not files:
            return pd.DataFrame(
                columns=["task_id", "item_id", "review_queue", "age_hours", "escalated_at"]
            )
        return self.read_parquet(files)

    def record_appeal(self, policy: str, frame: pd.DataFrame) -> Path:
        """An appeal received by the scoring API (`flywheel.appeals`), one part per appeal."""
        part = self._dir("appeals", policy) / f"part-{content_hash(frame)}.parquet"
        write_parquet_atomic(frame, part)
        return part

    def appeals(self, policy: str) -> pd.DataFrame:
        """Every appeal received for a policy (empty frame when none)."""
        files = sorted(self._dir("appeals", policy).glob("part-*.parquet"))
        return self.read_parquet(files) if files else pd.DataFrame()

    def appeal_outcomes(self, policy: str) -> pd.DataFrame:
        """Each decided appeal's outcome (`upheld`, `overturned`) and whether the reinstate
        webhook heard of it (labeling.appeals)."""
        path = self._dir("appeals", policy) / "outcomes.parquet"
        if not path.is_file():
            return pd.DataFrame(
                columns=["appeal_id", "item_id", "model_version", "outcome", "decided_at",
                         "notified", "notify_error"]
            )  # fmt: skip
        return pd.read_parquet(path)

    def write_appeal_outcomes(self, policy: str, frame: pd.DataFrame) -> None:
        write_parquet_atomic(frame, self._dir("appeals", policy) / "outcomes.parquet")

    def labeling_state(self, policy: str) -> dict:
        path = self._dir("labeling", policy) / "state.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_labeling_state(self, policy: str, state: dict) -> None:
        write_json_atomic(state, self._dir("labeling", policy) / "state.json")

    def labeling_path(self, policy: str, name: str) -> Path:
        return self._dir("labeling", policy) / name

    # monitoring ---------------------------------------------------------------------------

    def monitoring_dir(self, policy: str) -> Path:
        return self._dir("monitoring", policy)

    def run_dir(self, policy: str, run_id: str) -> Path:
        """One monitoring run's files (report.json, drift.html, drift.json)."""
        return self.monitoring_dir(policy) / "runs" / run_id

    def history_files(self, policy: str) -> list[Path]:
        """One row of key figures per monitoring run, oldest first by name."""
        return sorted((self.monitoring_dir(policy) / "history").glob("part-*.parquet"))

    def history_part(self, policy: str, run_id: str) -> Path:
        return self.monitoring_dir(policy) / "history" / f"part-{run_id}.parquet"

    def monitored_policies(self) -> list[str]:
        """Policies with at least one monitoring run in this lake."""
        folder = self.root / "monitoring"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "history").is_dir())

    @property
    def health_page(self) -> Path:
        return self.root / "monitoring" / "health.html"

    @property
    def workspace(self) -> Path:
        """The Evidently workspace of every policy's drift snapshots."""
        return self.root / "monitoring" / "workspace"

    @property
    def alerts_file(self) -> Path:
        return self.root / "monitoring" / "alerts.json"

    def lock_path(self, name: str) -> Path:
        return self.root / "locks" / f"{name}.lock"

    def latest_emerging(self, policy: str) -> dict | None:
        """The latest monitoring run's emerging-risk findings (None before any run)."""
        path = self.monitoring_dir(policy) / "emerging.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def write_emerging(self, policy: str, emerging: dict) -> None:
        write_json_atomic(emerging, self.monitoring_dir(policy) / "emerging.json")

    # golden sets -------------------------------------------------------------------------

    def golden(self, policy: str) -> GoldenSet | None:
        """The current golden set of a policy, or None if none was imported."""
        pointer = self._dir("golden", policy) / "CURRENT.json"
        if not pointer.is_file():
            return None
        version = json.loads(pointer.read_text())["version"]
        return GoldenSet(
            version, pd.read_parquet(self._dir("golden", policy) / f"{version}.parquet")
        )

    def import_golden(self, policy: str, frame: pd.DataFrame, source: str) -> GoldenImport:
        """Add items to the golden set; a new content-addressed version becomes current."""
        with self.lock(policy):
            current = self.golden(policy)
            stored = current.frame if current is not None else frame.iloc[0:0]
            both = frame.merge(stored, on="item_id", how="inner", suffixes=("", "_stored"))
            for column in frame.columns.drop("item_id"):
                differs = ~_same(both[column], both[f"{column}_stored"])
                if differs.any():
                    item = both.loc[differs.idxmax(), "item_id"]
                    row = int(frame.index[frame["item_id"] == item][0]) + 1
                    raise FlywheelError(
                        f"{source}: row {row}, field {column!r}: golden item {item} is already "
                        f"stored with another value; nothing was imported"
                    )
            new = frame[~frame["item_id"].isin(stored["item_id"])]
            if new.empty and current is not None:
                return GoldenImport(current.version, 0, len(frame), len(stored))
            merged = pd.concat([stored, new], ignore_index=True).sort_values(
                "item_id", ignore_index=True
            )
            version = f"g-{content_hash(merged)}"
            write_parquet_atomic(merged, self._dir("golden", policy) / f"{version}.parquet")
            write_json_atomic(
                {"version": version, "items": len(merged), "updated_at": utc_now().isoformat()},
                self._dir("golden", policy) / "CURRENT.json",
            )
            return GoldenImport(version, len(new), len(frame) - len(new), len(merged))

    # datasets ----------------------------------------------------------------------------

    def dataset_dir(self, policy: str, version: str) -> Path:
        return self._dir("datasets", policy) / version

    def dataset_versions(self, policy: str) -> list[str]:
        folder = self._dir("datasets", policy)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "manifest.json").is_file())

    # scores of labelled items -------------------------------------------------------------

    def labelled_scores_path(self, policy: str) -> Path:
        return self._dir("training", policy) / "labelled_scores.parquet"

    def write_labelled_scores(self, policy: str, frame: pd.DataFrame) -> None:
        """The latest trained version's scores of the labelled items it did not train on
        (`item_id`, `score`, `model_version`): training writes them, reviewer QA reads them."""
        path = self.labelled_scores_path(policy)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(frame, path)

    def labelled_scores(self, policy: str) -> pd.Series | None:
        """item id → score, from the latest trained version; None before the first."""
        path = self.labelled_scores_path(policy)
        if not path.is_file():
            return None
        frame = pd.read_parquet(path, columns=["item_id", "score"])
        return frame.set_index("item_id")["score"]


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a == b) | (a.isna() & b.isna())


def _decision_ids(policy: str, frame: pd.DataFrame) -> pd.Series:
    """A decision is one reviewer's verdict on one item at one time. The fields are encoded as
    a JSON list, so no value can shift into its neighbour (`a|b` + `c` is not `a` + `b|c`)."""
    stamps = frame["decided_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    keys = [
        json.dumps([policy, item, reviewer, stamp])
        for item, reviewer, stamp in zip(
            frame["item_id"], frame["reviewer_id"], stamps, strict=True
        )
    ]
    return pd.Series(
        [hashlib.sha1(k.encode()).hexdigest()[:20] for k in keys], index=frame.index, dtype=object
    )
