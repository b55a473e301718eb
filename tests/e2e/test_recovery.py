"""A campaign the first champion allows, learnt through the real loop (`flywheel demo --pattern
hidden` on Label Studio, the scoring API, MLflow and Prefect) with exploration, and not without.

The campaign (everyday wording around phrases no other item uses, from accounts drawn like
benign ones, about 10% of traffic) starts with the first cycle's traffic. Its operators probe
the champion and reword what it would not allow (`--evasion-tries`), so no model sees it merely
because its review band happens to reach a few ordinary-looking items. With exploration on,
monitoring finds it in that cycle, reviewers see it in that cycle's push, the second cycle's
model learns it, and the third cycle's traffic, two cycles after the start, is caught at 0.8 or
more, with auto-action precision on each cycle's traffic not shown below the target and the
review load (review + exploration tasks) within `labeling.review_batch` at every push. The same
world with exploration off (a budget of 0: the review queue, a thin blind audit and gold
checks) stays below 0.3.

The world is the recovery benchmark's first (seed 1). Whether the peer stays below 0.3 depends
on how many campaign items the audit and the review band happen to show its reviewers: at the
demo's default seed (7) six of them (four audited, two reviewed) taught its third model 0.33 of
the campaign; `benchmarks/recovery.py` reports the peer over several worlds.
"""

import json

import pytest
import yaml

from flywheel.policy import load_policy
from flywheel.settings import REPO_ROOT
from flywheel.stats import Rate
from tests.conftest import free_port, run_cli

# a thin blind audit, as in the report that asked for exploration: at most 1% of each decision's
# traffic. The audit sized to the policy's half-widths reaches 10% in a world this small, and
# sees enough of a 10% campaign to teach it without any exploration
AUDIT_RATE = 0.01
ARGS = ["--pattern", "hidden", "--emerging-cycle", "1", "--cycles", "3", "--policies", "spam"]
ARGS += ["--seed", "1"]


def _demo(tmp_path, explore: bool) -> list[dict]:
    """The demo's per-cycle rows; `explore=False` runs the same world with a budget of 0."""
    raw = yaml.safe_load((REPO_ROOT / "policies" / "spam.yaml").read_text())
    raw["monitoring"] = {"audit_max_rate": AUDIT_RATE}
    if not explore:
        raw["labeling"]["explore_budget"] = 0.0
    policies = tmp_path / "policies"
    policies.mkdir(parents=True)
    (policies / "spam.yaml").write_text(yaml.safe_dump(raw))
    home = tmp_path / "home"
    env = {
        "LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}",
        "FLYWHEEL_POLICIES_DIR": str(policies),
        "COLUMNS": "200",
    }
    try:
        run_cli("demo", *ARGS, "--api-port", str(free_port()), home=home, **env)
    finally:
        run_cli("stop", home=home, **env)
    return json.loads((home / "demo" / "cycles.json").read_text())["rows"]


@pytest.mark.slow
def test_exploration_learns_a_campaign_the_model_allowed_and_nothing_else_does(tmp_path):
    policy = load_policy("spam")
    rows = _demo(tmp_path / "on", explore=True)
    assert rows[0]["pattern_recall"] < 0.3, rows  # the first champion allows the campaign
    assert any(a.split(":")[1] == "emerging" for a in rows[0]["alerts_opened"]), rows[0]
    assert rows[0]["pushed_by_queue"]["explore"] > 0
    assert rows[2]["pattern_recall"] >= 0.8, rows
    # auto-action on each cycle's fresh traffic, wherever the champion acted (a model whose
    # labelled evidence cannot show the target keeps auto-action off and reviews instead)
    acted = [r for r in rows if r["auto_actioned"]]
    assert acted, rows
    for row in acted:
        fresh = Rate(row["auto_action_violating"], row["auto_actioned"], policy.targets.confidence)
        assert not fresh.surely_below(policy.targets.auto_action_precision), (row["cycle"], fresh)
    budget = policy.labeling.explore_budget * policy.labeling.review_batch
    for row in rows:
        queues = row["pushed_by_queue"]
        assert queues["review"] + queues["explore"] <= policy.labeling.review_batch, row
        assert queues["explore"] <= 1.5 * budget, row

    without = _demo(tmp_path / "off", explore=False)
    assert [r["pattern_items"] for r in without] == [r["pattern_items"] for r in rows]
    assert all(r["pushed_by_queue"]["explore"] == 0 for r in without)
    assert all(r["pattern_recall"] < 0.3 for r in without), without
