"""The retrain flow on a real (test) Prefect server."""

import json

from flows.retrain import retrain
from flywheel.policy import load_policy
from labeling.qa import read_qa


def test_retrain_flow_promotes_then_is_idempotent(prefect_harness, stocked):
    state = retrain("spam", return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert summary.outcome == "promoted" and not summary.reused_model
    # The imported history alone cannot judge the careless reviewer; the first model's scores
    # can, so the run trained once more without them and gated that model.
    report = read_qa(load_policy("spam"), stocked)
    assert report["scored"] and report["flagged"] == ["rev-fox"]
    manifest = json.loads(
        (stocked.dataset_dir("spam", summary.dataset_version) / "manifest.json").read_text()
    )
    assert manifest["flagged_reviewers"]["excluded"] == ["rev-fox"]
    assert summary.model_version == 2

    again = retrain("spam")
    assert again.reused_model and again.model_version == summary.model_version
    assert again.dataset_version == summary.dataset_version
    assert again.outcome == f"version {summary.model_version} is already the champion"


def test_retrain_flow_fails_cleanly_without_decisions(prefect_harness, home):
    state = retrain("scam", return_state=True)
    assert state.is_failed()
    assert "no decisions stored for scam" in str(
        state.message
    ) or "no decisions stored for scam" in repr(state.result(raise_on_failure=False))
