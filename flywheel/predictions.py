"""The prediction log: every score the API gave, kept in the lake for monitoring, sampling, audit.

The scoring server appends JSON lines to a segment file (`lake/predictions/_segments/`) before it
answers, so a prediction whose answer was sent survives the server being killed. A rolled segment
is compacted into typed Parquet per policy (`lake/predictions/<policy>/part-<segment>.parquet`)
by a separate, low-priority process, so the server never pays for it. Readers see both: the
compacted parts and whatever segments are not compacted yet.

A line holds one policy's predictions of one batch as columns (kind `p`: request ids, item
indexes, item ids, scores, decisions and items as lists, the model version and thresholds
once), so a batch of a thousand is one JSON object, not a thousand. Shadow lines (kind `s`)
hold the challenger's scores for some of them, written after the answers so that shadow scoring
never delays a response; compaction unnests both and joins them. `LINE` is the one definition
of a line: the writer makes lines with `line()`, the reader's columns come from it too.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from flywheel.errors import FlywheelError
from flywheel.files import atomic_path, write_json_atomic
from flywheel.policy import Policy, load_policy
from flywheel.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

OPEN_SUFFIX = ".jsonl.open"  # being written by a live server (which holds a lock on it)
CLOSED_SUFFIX = ".jsonl"  # rolled: complete, waiting for compaction
UNFILED_SUFFIX = ".unfiled.json"  # beside a segment compaction kept: why it could not file it

COLUMNS = [
    "request_id",
    "item_index",
    "item_id",
    "policy",
    "model_name",
    "model_version",
    "score",
    "decision",
    "threshold_review",
    "threshold_auto_action",
    "fallback",
    "shadow_version",
    "shadow_score",
    "shadow_decision",
    "scored_at",
]


@dataclass(frozen=True)
class LineField:
    key: str  # in a segment's JSON line (short: the server writes one per batch and policy)
    sql: str  # its DuckDB type when compaction reads it back


PREDICTIONS, SHADOW = "p", "s"  # the two kinds of line
LINE = {
    "kind": LineField("k", "VARCHAR"),
    "policy": LineField("policy", "VARCHAR"),
    "version": LineField("v", "BIGINT"),
    "threshold_review": LineField("tr", "DOUBLE"),
    "threshold_auto_action": LineField("ta", "DOUBLE"),
    "fallback": LineField("fb", "BOOLEAN"),
    "at": LineField("at", "DOUBLE"),  # seconds since the epoch, when the batch was scored
    "request_ids": LineField("rid", "VARCHAR[]"),
    "indexes": LineField("i", "BIGINT[]"),  # each prediction's item index in its request
    "item_ids": LineField("item_id", "VARCHAR[]"),
    "scores": LineField("score", "DOUBLE[]"),
    "decisions": LineField("decision", "VARCHAR[]"),
    "items": LineField("item", "JSON[]"),  # as checked: the requested policies' fields
}


def line(**fields: object) -> dict:
    """A segment line from `LINE`'s field names: the writer's only way to make one, so its keys
    are the ones the reader's columns expect (an unknown name is a KeyError, not a lost field)."""
    return {LINE[name].key: value for name, value in fields.items()}


def _k(name: str) -> str:
    """A line field's column, quoted, for the reader's SQL."""
    return f'"{LINE[name].key}"'


def segments_dir(settings: Settings) -> Path:
    return settings.lake_dir / "predictions" / "_segments"


def policy_dir(settings: Settings, policy: str) -> Path:
    return settings.lake_dir / "predictions" / policy


def _field_sql(policy: Policy) -> str:
    """Typed columns for the policy's fields, read out of each line's `item` object."""
    parts = []
    for name in policy.fields.text + policy.fields.categorical:
        parts.append(f"coalesce(p.item->>'{name}', '') AS \"{name}\"")
    for name in policy.fields.numeric:
        parts.append(f"TRY_CAST(p.item->>'{name}' AS DOUBLE) AS \"{name}\"")
    return ",\n".join(parts)


def _select(source_sql: str, policy: Policy) -> str:
    """Predictions of one policy with their shadow scores, from lines in `source_sql`."""
    fields = _field_sql(policy)
    k = {name: _k(name) for name in LINE}
    return f"""
        WITH lines AS ({source_sql}),
        p AS (
            SELECT unnest({k["request_ids"]}) AS rid, unnest({k["indexes"]}) AS i,
                   unnest({k["item_ids"]}) AS item_id, {k["policy"]} AS policy,
                   {k["version"]} AS v, unnest({k["scores"]}) AS score,
                   unnest({k["decisions"]}) AS decision, {k["threshold_review"]} AS tr,
                   {k["threshold_auto_action"]} AS ta, {k["fallback"]} AS fb, {k["at"]} AS "at",
                   unnest({k["items"]}) AS item
            FROM lines
            WHERE {k["kind"]} = '{PREDICTIONS}' AND {k["policy"]} = '{policy.name}'
        ),
        s AS (
            SELECT unnest({k["request_ids"]}) AS rid, unnest({k["indexes"]}) AS i,
                   {k["version"]} AS v, unnest({k["scores"]}) AS score,
                   unnest({k["decisions"]}) AS decision
            FROM lines WHERE {k["kind"]} = '{SHADOW}' AND {k["policy"]} = '{policy.name}'
        )
        SELECT p.rid AS request_id, p.i AS item_index, p.item_id, p.policy,
               p.policy AS model_name, p.v AS model_version, p.score, p.decision,
               p.tr AS threshold_review, p.ta AS threshold_auto_action, p.fb AS fallback,
               s.v AS shadow_version, s.score AS shadow_score, s.decision AS shadow_decision,
               to_timestamp(p."at") AS scored_at
               {"," if fields else ""} {fields}
        FROM p LEFT JOIN s ON p.rid = s.rid AND p.i = s.i
        ORDER BY scored_at, request_id, item_index
    """


def _lines_sql(files: list[Path]) -> str:
    quoted = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    columns = ", ".join(f"'{f.key}': '{f.sql}'" for f in LINE.values())
    return (
        f"SELECT * FROM read_json([{quoted}], format = 'newline_delimited', "
        f"columns = {{{columns}}}, ignore_errors = true)"
    )


def _copy_to_parquet(sql: str, path: Path) -> None:
    """Straight from JSON lines to Parquet inside DuckDB: the compactor needs no pandas."""
    con = duckdb.connect()
    try:
        quoted = str(path).replace("'", "''")
        con.execute(f"COPY ({sql}) TO '{quoted}' (FORMAT parquet)")
    finally:
        con.close()


def _segment_policies(files: list[Path]) -> list[str]:
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT DISTINCT {_k('policy')} FROM ({_lines_sql(files)}) "
            f"WHERE {_k('policy')} IS NOT NULL"
        ).fetchall()
    finally:
        con.close()
    return sorted(row[0] for row in rows)


def pending_segments(settings: Settings) -> list[Path]:
    """Segments not compacted yet, open or closed."""
    folder = segments_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((OPEN_SUFFIX, CLOSED_SUFFIX)))


def _try_lock(handle: object) -> bool:
    """Segments are locked by their writer while open and by a compactor while compacted."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def compact_segment(segment: Path, settings: Settings) -> bool:
    """Turn one finished segment into Parquet parts (one per policy), then delete it; whether
    this call did.

    A segment whose writer still lives, or that another compactor holds, is left alone.
    Idempotent: parts are named after the segment and replaced whole, so a compaction that
    died half-way is simply run again. A segment holding a policy that cannot be loaded (a
    typo in its file, a renamed policy) is kept, with the reason beside it, and tried again by
    every later compaction: answered predictions are deleted only once filed.
    """
    try:
        handle = segment.open("rb")
    except FileNotFoundError:
        return False
    with handle:
        if not _try_lock(handle) or not segment.exists():
            return False
        stem = _stem(segment)
        lines = _lines_sql([segment])
        unfiled = {}
        for name in _segment_policies([segment]) if segment.stat().st_size else []:
            try:
                policy = load_policy(name, settings)
            except FlywheelError as exc:
                unfiled[name] = str(exc)
                continue
            path = policy_dir(settings, name) / f"part-{stem}.parquet"
            with atomic_path(path) as tmp:
                _copy_to_parquet(_select(lines, policy), tmp)
        if unfiled:
            write_json_atomic({"segment": segment.name, "policies": unfiled}, _reason(segment))
            return False
        segment.unlink(missing_ok=True)
        _reason(segment).unlink(missing_ok=True)
        return True


def _reason(segment: Path) -> Path:
    return segment.with_name(_stem(segment) + UNFILED_SUFFIX)


def unfiled_segments(settings: Settings) -> list[dict]:
    """Segments compaction had to keep, each with the policies it could not load and why."""
    folder = segments_dir(settings)
    if not folder.is_dir():
        return []
    found = []
    for reason in sorted(folder.glob(f"*{UNFILED_SUFFIX}")):
        try:
            found.append(json.loads(reason.read_text()))
        except (FileNotFoundError, ValueError):  # filed meanwhile, or being replaced
            continue
    return found


def _stem(segment: Path) -> str:
    return segment.name.split(".jsonl")[0]


def compact_pending(settings: Settings) -> int:
    """Compact every finished segment (closed, or open with a dead writer); how many were.

    Goes round again while new segments appeared during a pass: a server rolls a segment
    without starting a second compactor while this one runs, so this one must take it. Each
    round also retries the segments kept for a policy that could not load, which may have
    been fixed meanwhile."""
    done, seen = 0, set()
    while fresh := {s.name for s in pending_segments(settings)} - seen:
        seen |= fresh
        for segment in pending_segments(settings):
            done += compact_segment(segment, settings)
    return done


def latest_per_item(predictions: pd.DataFrame) -> pd.DataFrame:
    """An item scored several times counts once, on its latest prediction (sampling for review
    and audit, sizing the audit, a new version's expected decision shares)."""
    if predictions.empty:
        return predictions
    ordered = predictions.sort_values("scored_at", kind="stable")
    return ordered.drop_duplicates("item_id", keep="last").reset_index(drop=True)


def read_predictions(settings: Settings, policy: Policy) -> pd.DataFrame:
    """Every logged prediction of a policy: compacted parts plus segments still pending."""
    return _retrying(_read_predictions, settings, policy)


def traffic(settings: Settings, policy: Policy, since: float) -> pd.DataFrame:
    """Predictions per UTC hour (and its day), decision and fallback since `since` (seconds
    since the epoch), counted inside DuckDB from three columns: a console page over a million
    logged predictions reads no item and builds no frame of them."""
    return _retrying(_traffic, settings, policy, since)


def _retrying(read, *args):
    """Segments move while a server runs (rolled, then compacted and deleted); a read that lost
    a file to such a move is simply done again."""
    for _ in range(4):
        try:
            return read(*args)
        except (FileNotFoundError, duckdb.IOException):
            continue
    return read(*args)


def _sources(settings: Settings, policy: str) -> tuple[list[Path], list[Path]]:
    """The policy's compacted parts, and the pending segments not compacted into one yet."""
    parts = sorted(policy_dir(settings, policy).glob("part-*.parquet"))
    compacted = {p.stem.removeprefix("part-") for p in parts}
    segments = [s for s in pending_segments(settings) if _stem(s) not in compacted and _size(s)]
    return parts, segments


def _traffic(settings: Settings, policy: Policy, since: float) -> pd.DataFrame:
    from flywheel.lake import Lake

    parts, segments = _sources(settings, policy.name)
    selects = []
    if parts:
        quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
        selects.append(
            f"SELECT scored_at, decision, fallback FROM read_parquet([{quoted}], "
            "union_by_name = true)"
        )
    if segments:
        k = {name: _k(name) for name in LINE}
        selects.append(
            f"SELECT to_timestamp({k['at']}) AS scored_at, unnest({k['decisions']}) AS decision, "
            f"{k['fallback']} AS fallback FROM ({_lines_sql(segments)}) "
            f"WHERE {k['kind']} = '{PREDICTIONS}' AND {k['policy']} = '{policy.name}'"
        )
    if not selects:
        selects.append(
            "SELECT NULL::TIMESTAMPTZ AS scored_at, NULL AS decision, NULL::BOOLEAN AS fallback "
            "WHERE false"
        )
    return Lake.query(
        f"""SELECT date_trunc('day', scored_at AT TIME ZONE 'UTC') AS day,
                   date_trunc('hour', scored_at AT TIME ZONE 'UTC') AS hour, decision,
                   coalesce(fallback, false) AS fallback, count(*) AS predictions
            FROM ({" UNION ALL ".join(selects)})
            WHERE scored_at >= to_timestamp({float(since)})
            GROUP BY ALL ORDER BY hour, decision"""
    )


def _read_predictions(settings: Settings, policy: Policy) -> pd.DataFrame:
    parts, segments = _sources(settings, policy.name)
    import pandas as pd

    from flywheel.lake import Lake  # pandas and pyarrow: readers only, never the compactor

    frames = []
    if parts:
        frames.append(Lake.read_parquet(parts))
    if segments:
        frames.append(Lake.query(_select(_lines_sql(segments), policy)))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, *policy.feature_columns])
    return pd.concat(frames, ignore_index=True).sort_values(
        ["scored_at", "request_id", "item_index"], ignore_index=True
    )


def prediction_of(settings: Settings, policy: Policy, item_id: str) -> dict | None:
    """The latest logged prediction of one item (with its fields), or None: filtered inside
    DuckDB, so an appeal's lookup reads no other item."""
    return _retrying(_prediction_of, settings, policy, item_id)


def _prediction_of(settings: Settings, policy: Policy, item_id: str) -> dict | None:
    parts, segments = _sources(settings, policy.name)
    sources = []
    if parts:
        quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
        sources.append(f"SELECT * FROM read_parquet([{quoted}], union_by_name = true)")
    if segments:
        sources.append(_select(_lines_sql(segments), policy))
    if not sources:
        return None
    con = duckdb.connect()
    try:
        found = [
            con.execute(
                f"SELECT * FROM ({sql}) WHERE item_id = $1 ORDER BY scored_at DESC LIMIT 1",
                [item_id],
            ).fetch_df()
            for sql in sources
        ]
    finally:
        con.close()
    rows = [f for f in found if not f.empty]
    if not rows:
        return None
    latest = max(rows, key=lambda f: f["scored_at"].iloc[0])
    return latest.iloc[0].to_dict()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # compacted meanwhile
        return 0


def spawn_compaction(settings: Settings) -> subprocess.Popen:
    """Compact finished segments in a separate, low-priority process (the server goes on)."""
    env = {**os.environ, "FLYWHEEL_HOME": str(settings.root)}
    return subprocess.Popen(
        [sys.executable, "-m", "flywheel.predictions"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.nice(10),  # only lowers this child's priority
        start_new_session=True,
    )


if __name__ == "__main__":
    from flywheel.settings import get_settings

    compact_pending(get_settings())
