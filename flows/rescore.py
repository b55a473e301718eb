"""The rescore flow: one registered version scores a file of items, chunks spread over Dask.

Heavy batch work runs on a Dask cluster through prefect-dask: a local one (worker processes on
this machine) by default, or an existing scheduler (`--dask-address tcp://host:8786`) whose
workers see the same home and registry. Without Dask the chunks run on Prefect's threads.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner
from prefect_dask import DaskTaskRunner
from pydantic import BaseModel, ConfigDict

from flywheel.errors import FlywheelError
from flywheel.policy import load_policy, policy_path
from flywheel.progress import watching
from flywheel.settings import get_settings
from serving.rescore import Chunk, pin_version, prepare, score_chunk


class RescoreSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy: str
    model_version: int
    rows: int
    parts: list[str]
    workers: list[str]  # where the chunks ran (host:pid)


def dask_runner(address: str | None = None, workers: int = 2) -> TaskRunner:
    """A Dask task runner: on the scheduler at `address`, else on a local cluster of worker
    processes with one thread each (the models are not thread-bound, the GIL is)."""
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True}
    )


@task(name="score-chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def score_chunk_task(policy: str, version: int, staged: str, chunk: Chunk, out_dir: str) -> dict:
    return score_chunk(policy, version, Path(staged), chunk, Path(out_dir))


@flow(name="rescore", log_prints=True)
def rescore(
    policy: str, items: str, out_dir: str, alias: str = "champion", chunk_items: int = 20_000
) -> RescoreSummary:
    """Score `items` with the version `alias` names when the run starts; one part per chunk."""
    if chunk_items < 1:
        raise FlywheelError("rescore: chunk_items must be at least 1")
    settings = get_settings()
    loaded = load_policy(policy, settings)
    path = str(policy_path(policy, settings))
    version = pin_version(loaded, settings, alias)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    staged, chunks = prepare(Path(items), loaded, out, chunk_items)
    futures = [
        score_chunk_task.submit(path, version, str(staged), chunk, str(out)) for chunk in chunks
    ]
    progress = watching()
    progress("scoring chunks", 0, len(futures))
    done = []
    for future in as_completed(futures):
        done.append(future.result())
        progress("scoring chunks", len(done), len(futures))
    done.sort(key=lambda d: d["part"])
    summary = RescoreSummary(
        policy=loaded.name,
        model_version=version,
        rows=sum(d["rows"] for d in done),
        parts=[d["part"] for d in done],
        workers=sorted({d["worker"] for d in done}),
    )
    print(
        f"{loaded.name} v{version}: {summary.rows} items in {len(summary.parts)} parts "
        f"on {len(summary.workers)} worker(s)"
    )
    return summary
