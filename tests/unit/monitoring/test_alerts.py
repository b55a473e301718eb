import json
import threading

import pytest

from monitoring.alerts import AlertStore, Condition
from tests.conftest import free_port, http_stub

DRIFT = Condition("drift", "score", 0.2, 0.1, "the score distribution drifted")
FOX = Condition("reviewer", "rev-fox", None, None, "reviewer rev-fox is below the quality bar")


@pytest.fixture
def receiver():
    """A real HTTP endpoint that records what is posted to it."""
    posted = []

    def answer(_handler, body: bytes) -> int:
        posted.append(json.loads(body))
        return 200

    with http_stub(answer) as url:
        yield f"{url}/hook", posted


def test_alerts_open_once_stay_open_and_resolve(tmp_path, receiver):
    url, posted = receiver
    store = AlertStore(tmp_path, webhook_url=url)
    first = store.update("spam", [DRIFT, FOX])
    assert len(first.opened) == 2 and not first.resolved
    again = store.update("spam", [DRIFT, FOX])
    assert not again.opened and len(again.still_open) == 2  # deduplicated while open
    cleared = store.update("spam", [FOX])
    assert [a.key for a in cleared.resolved] == ["spam:drift:score"]
    assert {a.key for a in store.all() if a.open} == {"spam:reviewer:rev-fox"}
    # another policy's run never touches spam's alerts
    store.update("scam", [])
    assert {a.key for a in store.all() if a.open} == {"spam:reviewer:rev-fox"}
    assert [p["text"].split(":")[1] for p in posted] == ["rotating_light"] * 2 + [
        "white_check_mark"
    ]
    assert "the score distribution drifted" in posted[0]["text"] + posted[1]["text"]


def test_a_failing_webhook_is_recorded_and_never_blocks(tmp_path):
    store = AlertStore(tmp_path, webhook_url=f"http://127.0.0.1:{free_port()}/hook", retries=2)
    update = store.update("spam", [DRIFT])
    [alert] = update.opened
    assert alert.notify_error.startswith("webhook failed after 2 tries")
    [stored] = store.all()
    assert stored.open and stored.notify_error == alert.notify_error


def test_a_slow_webhook_holds_up_no_other_run(tmp_path):
    """The webhook answers only once another policy's run has stored its alerts: a post made
    inside the store's lock would wait for that run, which waits for the lock, until the post
    times out."""
    other_done, posted = threading.Event(), threading.Event()

    def answer(_handler, _body) -> int:
        posted.set()
        other_done.wait(10)
        return 200

    with http_stub(answer) as url:
        slow = AlertStore(tmp_path, webhook_url=f"{url}/hook", retries=1)
        posting = threading.Thread(target=lambda: slow.update("spam", [DRIFT]))
        posting.start()
        assert posted.wait(10)  # the spam run is posting now
        AlertStore(tmp_path).update("scam", [FOX])  # no webhook: only the lock
        other_done.set()
        posting.join(10)
    stored = {a.policy: a for a in AlertStore(tmp_path).all()}
    assert set(stored) == {"spam", "scam"}
    assert stored["spam"].notify_error is None  # posted, not timed out


def _report(fnr, golden_precision):
    """A monitoring report with just an audit FNR and a golden precision, as rates with bounds."""
    from monitoring.report import MonitoringReport

    return MonitoringReport.model_validate(
        {
            "policy": "spam",
            "run_id": "r1",
            "computed_at": "2026-12-01T00:00:00+00:00",
            "window": {"since": "2026-11-24", "until": "2026-12-01", "predictions": 0},
            "production": {"audit": {"rates": {"allow_fnr": fnr}}},
            "health": {},
            "golden": {
                "champion": {
                    "version": 1,
                    "items": 40,
                    "slices": {
                        "all": {
                            "auto_action": {"precision": golden_precision},
                            "review": {"recall": {"value": None}},
                        }
                    },
                }
            },
        }
    )


def test_sampled_figures_alert_only_when_their_bounds_cross_the_bar():
    from flywheel.policy import load_policy
    from flywheel.stats import Rate
    from monitoring.monitor import conditions

    policy = load_policy("spam")  # allow FNR at most 0.2; golden precision at least 0.9
    # 3 of 10 audited violating items allowed: 0.3 on the point, but 0.2 is within its bounds
    unclear = conditions(policy, _report(Rate(3, 10, 0.95).as_dict(), Rate(17, 20, 0.95).as_dict()))
    assert unclear == []
    shown = conditions(policy, _report(Rate(30, 60, 0.95).as_dict(), Rate(30, 40, 0.95).as_dict()))
    assert [(c.kind, c.subject) for c in shown] == [
        ("golden", "precision"),
        ("production", "allow_fnr"),
    ]
    fnr = next(c for c in shown if c.subject == "allow_fnr")
    low, high = Rate(30, 60, 0.95).low, Rate(30, 60, 0.95).high
    assert f"[{low:.3f}, {high:.3f}] on 60 audited violating items" in fnr.message
    assert "at 95% confidence" in fnr.message


def test_a_cluster_whose_top_terms_reorder_keeps_its_alert(tmp_path):
    def cluster(*top):
        return Condition("emerging", ", ".join(sorted(top[:3])), 30, None, "cluster", terms=top)

    store = AlertStore(tmp_path)
    [opened] = store.update("spam", [cluster("airdrop", "claim token", "wallet", "mint")]).opened
    again = store.update("spam", [cluster("wallet", "mint", "airdrop", "presale")])
    assert not again.opened and [a.key for a in again.still_open] == [opened.key]
    other = store.update("spam", [cluster("zorvik", "plexa", "mint", "kuna")])  # one term shared
    assert len(other.opened) == 1 and [a.key for a in other.resolved] == [opened.key]
