"""Batch re-scoring: what one registered version decides on a file of items, chunk by chunk.

Used before and after a promotion (how would the new champion have decided last week's
traffic?) and for backfills. Each chunk is independent: it reads its rows, scores them and
writes its own Parquet part, so chunks can run on any worker that sees the same home and
registry (`flows/rescore.py` spreads them over a Dask cluster).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from flywheel.errors import FlywheelError
from flywheel.lake import Lake, write_parquet_atomic
from flywheel.policy import Policy, load_policy
from flywheel.records import read_table, validate_items
from flywheel.registry import connect, get_version
from flywheel.runtime import Model, load
from flywheel.settings import Settings


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    stop: int


def prepare(
    items: Path, policy: Policy, out_dir: Path, chunk_items: int
) -> tuple[Path, list[Chunk]]:
    """Validate the whole file once, so a bad row fails the run before any chunk is scored;
    stage the checked items as Parquet beside the output, then cut them into row ranges."""
    frame = validate_items(read_table(items), policy, str(items))
    staged = out_dir / "input.parquet"
    write_parquet_atomic(frame, staged)
    chunks = [
        Chunk(i, start, min(start + chunk_items, len(frame)))
        for i, start in enumerate(range(0, len(frame), chunk_items))
    ]
    return staged, chunks


def pin_version(policy: Policy, settings: Settings, alias: str) -> int:
    """The version the alias names now: every chunk scores with it, even if the alias moves."""
    ref = get_version(connect(settings), policy.name, alias)
    if ref is None:
        raise FlywheelError(f"{policy.name} has no model version or alias {alias!r}")
    return ref.version


@lru_cache(maxsize=4)
def _model(policy_path: str, version: int, tracking_uri: str) -> Model:
    """One load per worker process and version, however many chunks it scores (the registry's
    address is part of the key, so two registries never share a cached model)."""
    settings = Settings()
    policy = load_policy(policy_path, settings)
    model = load(settings, policy, version)
    if model is None:
        raise FlywheelError(f"{policy.name} version {version} is not in {tracking_uri}")
    return model


def score_chunk(policy_path: str, version: int, staged: Path, chunk: Chunk, out_dir: Path) -> dict:
    """Score one row range and write it as one part; where it ran is returned for the summary."""
    settings = Settings()
    model = _model(policy_path, version, settings.tracking_uri)
    source = str(staged).replace("'", "''")
    frame = Lake.query(
        f"SELECT * FROM read_parquet('{source}') "
        f"LIMIT {chunk.stop - chunk.start} OFFSET {chunk.start}"
    )
    scores = model.score(frame)
    part = pd.DataFrame(
        {
            "item_id": frame["item_id"],
            "policy": model.policy.name,
            "model_version": version,
            "score": scores,
            "decision": model.ref.thresholds.decide(scores),
        }
    )
    path = out_dir / f"part-{chunk.index:05d}.parquet"
    write_parquet_atomic(part, path)
    return {"part": str(path), "rows": len(part), "worker": f"{socket.gethostname()}:{os.getpid()}"}
