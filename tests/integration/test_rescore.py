"""Batch re-scoring through Dask (prefect-dask on a local cluster of worker processes) against a
real registry: the parts hold every item once, scored exactly as the model scores in-process."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from flows.rescore import dask_runner, rescore
from flywheel.errors import FlywheelError
from flywheel.progress import watched_by
from flywheel.registry import connect, get_version
from flywheel.runtime import load_model
from tests.conftest import run_cli


@pytest.fixture
def trained_home(trained, monkeypatch):
    settings, _, _ = trained
    monkeypatch.setenv("FLYWHEEL_HOME", str(settings.root))
    return settings


@pytest.mark.slow
def test_chunks_run_on_dask_workers_and_match_in_process_scoring(
    prefect_harness, trained_home, spam, small_world, tmp_path
):
    items = small_world.traffic.head(2_500)
    source = tmp_path / "items.parquet"
    items.to_parquet(source)
    out = tmp_path / "scored"

    run = rescore.with_options(task_runner=dask_runner(workers=2))
    reported = []
    with watched_by(lambda step, done, total=None: reported.append((step, done, total))):
        summary = run("spam", str(source), str(out), chunk_items=500)

    assert summary.rows == len(items) and len(summary.parts) == 5
    assert summary.parts == sorted(summary.parts)
    # the flow's progress reaches whoever watches it: chunk by chunk, as they complete
    assert reported == [("scoring chunks", done, 5) for done in range(6)]
    assert summary.workers and all(not w.endswith(f":{os.getpid()}") for w in summary.workers)
    scored = pd.read_parquet(sorted(out.glob("part-*.parquet")))
    assert scored["item_id"].tolist() == items["item_id"].tolist()
    client = connect(trained_home)
    champion = get_version(client, "spam", "champion")
    expected = load_model(client, champion, spam).score(items)
    assert (scored["model_version"] == champion.version).all()
    assert scored["score"].to_numpy() == pytest.approx(expected, abs=1e-12)
    assert (scored["decision"].to_numpy() == champion.thresholds.decide(expected)).all()


def test_a_bad_row_fails_before_any_chunk_is_scored(
    prefect_harness, trained_home, small_world, tmp_path
):
    items = small_world.traffic.head(50).copy()
    items["links"] = items["links"].astype(object)
    items.loc[7, "links"] = "many"
    source = tmp_path / "items.csv"
    items.to_csv(source, index=False)
    out = tmp_path / "scored"
    with pytest.raises(FlywheelError, match=r"row 8.*links"):
        rescore("spam", str(source), str(out))
    assert not list(out.glob("*.parquet"))


def test_the_command_scores_with_a_named_version(trained_home, small_world, tmp_path):
    source = tmp_path / "items.jsonl"
    small_world.traffic.head(300).to_json(source, orient="records", lines=True)
    done = run_cli(
        "rescore", "--policy", "spam", "--items", str(source), "--out", str(tmp_path / "out"),
        "--alias", "1", "--chunk-items", "100", "--dask-workers", "0", "--json",
        home=trained_home.root,
    )  # fmt: skip
    assert '"rows": 300' in done.stdout and '"model_version": 1' in done.stdout
    missing = run_cli(
        "rescore", "--policy", "spam", "--items", str(source), "--out", str(tmp_path / "o2"),
        "--alias", "99", home=trained_home.root, check=False,
    )  # fmt: skip
    assert missing.returncode != 0 and "spam has no model version or alias '99'" in missing.stderr
