"""The prediction log's format: segments, compaction to typed Parquet, reading both."""

import fcntl
import os
import shutil

import numpy as np

from flywheel.policy import load_policy
from flywheel.predictions import (
    SHADOW,
    compact_pending,
    line,
    pending_segments,
    policy_dir,
    read_predictions,
    unfiled_segments,
)
from flywheel.settings import Settings
from serving.predlog import PredictionLog
from tests.conftest import log_line


def test_segments_compact_to_typed_parquet_with_shadow_scores(settings, spam):
    log = PredictionLog(settings, compact=False)
    log.write([log_line(("r1", 0), ("r1", 1), ("r2", 0))])
    log.write(
        [
            line(
                kind=SHADOW,
                policy="spam",
                version=4,
                request_ids=["r1"],
                indexes=[1],
                scores=[0.9],
                decisions=["auto_action"],
            )
        ]
    )
    pending = read_predictions(settings, spam)
    assert len(pending) == 3 and pending_segments(settings)

    log.roll()
    assert compact_pending(settings) == 1
    parts = list(policy_dir(settings, "spam").glob("part-*.parquet"))
    assert len(parts) == 1
    frame = read_predictions(settings, spam)
    assert len(frame) == 3, "compacted rows are not read twice"
    shadow = frame.set_index(["request_id", "item_index"]).loc[("r1", 1)]
    assert shadow["shadow_version"] == 4 and shadow["shadow_score"] == 0.9
    assert frame["shadow_score"].isna().sum() == 2
    assert np.isnan(frame["account_age_days"]).all() and (frame["links"] == 2.0).all()
    assert (
        str(frame["scored_at"].dtype).startswith("datetime64")
        and frame["scored_at"].dt.tz is not None
    )
    assert frame["threshold_auto_action"].isna().all()


def test_an_open_segment_is_left_to_its_living_writer(settings, spam):
    log = PredictionLog(settings, compact=False)
    log.write([log_line(("r1", 0))])
    assert compact_pending(settings) == 0
    assert len(read_predictions(settings, spam)) == 1


def test_a_dead_writers_segment_is_compacted_and_a_torn_line_skipped(settings, spam):
    log = PredictionLog(settings, compact=False)
    log.write([log_line(("r1", 0)), log_line(("r2", 0))])
    os.write(log.fd, b'{"k": "p", "policy": "spam", "v": 3, "rid": ["r3"], "i": [0], "ite')
    fcntl.flock(log.fd, fcntl.LOCK_UN)  # as if the server had been killed
    assert compact_pending(settings) == 1
    frame = read_predictions(settings, spam)
    assert frame["request_id"].tolist() == ["r1", "r2"]


def test_a_segment_whose_policy_cannot_load_is_kept_reported_and_filed_later(tmp_path, home, spam):
    """A typo in one policy's file while its predictions wait: the segment stays (nothing
    answered is deleted), the reason is reported, and the next compaction after the fix files
    it, without the other policy's rows read twice meanwhile."""
    settings, fix = _scam_broken(tmp_path, home)
    log = PredictionLog(settings, compact=False)
    log.write([log_line(("r1", 0)), {**log_line(("r2", 0)), "policy": "scam"}])
    log.close()

    assert compact_pending(settings) == 0
    assert len(pending_segments(settings)) == 1
    [kept] = unfiled_segments(settings)
    assert list(kept["policies"]) == ["scam"] and "scam.yaml" in kept["policies"]["scam"]
    assert read_predictions(settings, spam)["request_id"].tolist() == ["r1"]

    fix()
    assert compact_pending(settings) == 1
    assert not pending_segments(settings) and not unfiled_segments(settings)
    scam = load_policy("scam", settings)
    assert read_predictions(settings, scam)["request_id"].tolist() == ["r2"]
    assert read_predictions(settings, spam)["request_id"].tolist() == ["r1"]


def test_a_segment_rolled_while_the_compactor_runs_is_taken_and_a_kept_one_retried(
    tmp_path, home, spam, monkeypatch
):
    """A server does not start a second compactor while one runs: the running one goes round
    again for a segment rolled during its pass, and retries the one it had to keep, whose
    policy file was fixed meanwhile."""
    import flywheel.predictions as predictions

    settings, fix = _scam_broken(tmp_path, home)
    log = PredictionLog(settings, compact=False)
    log.write([{**log_line(("r1", 0)), "policy": "scam"}])
    log.roll()

    real, rolled = predictions.compact_segment, []

    def compact_then_roll(segment, settings):
        filed = real(segment, settings)
        if not rolled:  # during the first pass: the file is fixed and the server rolls
            fix()
            log.write([{**log_line(("r2", 0)), "policy": "scam"}])
            log.roll()
            rolled.append(True)
        return filed

    monkeypatch.setattr(predictions, "compact_segment", compact_then_roll)
    assert compact_pending(settings) == 2
    assert not unfiled_segments(settings)
    scam = load_policy("scam", settings)
    assert sorted(read_predictions(settings, scam)["request_id"]) == ["r1", "r2"]


def _scam_broken(tmp_path, home):
    """Settings over a copy of the shipped policies whose scam file has a typo, and a call that
    fixes it."""
    policies = tmp_path / "policies"
    shutil.copytree(Settings().policies_dir, policies)
    good = (policies / "scam.yaml").read_text()
    (policies / "scam.yaml").write_text(good.replace("name: scam", "name: [scam"))
    return Settings(home=home, policies_dir=policies), lambda: (policies / "scam.yaml").write_text(
        good
    )
