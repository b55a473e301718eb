"""The retrain flow on a real (test) Prefect server."""

from flows.retrain import retrain


def test_retrain_flow_promotes_then_is_idempotent(prefect_harness, stocked):
    state = retrain("spam", return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert summary.outcome == "promoted" and summary.model_version == 1 and not summary.reused_model

    again = retrain("spam")
    assert again.reused_model and again.model_version == 1
    assert again.dataset_version == summary.dataset_version
    assert again.outcome == "version 1 is already the champion"


def test_retrain_flow_fails_cleanly_without_decisions(prefect_harness, home):
    state = retrain("scam", return_state=True)
    assert state.is_failed()
    assert "no decisions stored for scam" in str(
        state.message
    ) or "no decisions stored for scam" in repr(state.result(raise_on_failure=False))
