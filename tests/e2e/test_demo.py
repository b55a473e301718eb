"""`flywheel demo`, the main job, end to end and twice (it must be idempotent)."""

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_demo_promotes_both_policies_and_reruns_cleanly(tmp_path):
    home = tmp_path / "home"
    first = run_cli("demo", "--days", "14", "--items-per-day", "700", home=home)
    assert first.stdout.count(": promoted") == 2, first.stdout
    for policy in ("spam", "scam"):
        assert f"flywheel promote --policy {policy} --dry-run" in first.stdout
    assert f"bin/mlflow ui --backend-store-uri sqlite:///{home}" in first.stdout

    second = run_cli("demo", "--days", "14", "--items-per-day", "700", home=home)
    assert second.stdout.count("0 decisions imported") == 2
    assert second.stdout.count("(reused): version 1 is already the champion") == 2

    # issue 5's check: monitoring after the demo writes the report and the health page
    monitored = run_cli("monitor", "--policy", "spam", home=home)
    assert "report:" in monitored.stdout
    assert (home / "lake" / "monitoring" / "health.html").is_file()
    assert list((home / "lake" / "monitoring" / "spam" / "runs").glob("*/report.json"))
