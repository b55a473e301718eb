"""The command line as a user runs it: one process per command, exit codes and messages."""

import json
import shutil

import pytest
import yaml

from flywheel.settings import REPO_ROOT
from tests.conftest import run_cli


def _error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {done.stderr!r}"
    return lines[0]


def test_help_lists_the_contract_commands(tmp_path):
    done = run_cli("--help", home=tmp_path)
    for command in ("simulate", "decisions", "golden", "dataset", "train", "promote", "demo"):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--policy", "hate"], "error: unknown policy 'hate'"),
        (["dataset", "build", "--policy", "spam"], "error: no decisions stored for spam"),
        (
            ["decisions", "import", "missing.csv", "--policy", "spam"],
            "error: missing.csv: no such file",
        ),
        (["promote", "--policy", "spam"], "error: no challenger for spam"),
    ],
)
def test_failures_are_one_line_and_nonzero(tmp_path, args, message):
    done = run_cli(*args, home=tmp_path / "home", check=False)
    assert done.returncode == 1
    assert _error_line(done).startswith(message)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["train", "--bogus"], "No such option: --bogus"),
        (["serve", "--port", "abc"], "Invalid value for '--port'"),
        (["promote"], "Missing option '--policy'"),
    ],
)
def test_usage_errors_name_the_option_and_exit_2(tmp_path, args, names):
    done = run_cli(*args, home=tmp_path / "home", check=False)
    assert done.returncode == 2
    assert done.stderr.startswith(f"Usage: flywheel {args[0]} [OPTIONS]"), done.stderr
    assert f"Error: {names}" in done.stderr and "unexpected" not in done.stderr


def test_malformed_policy_file_names_the_key(tmp_path):
    policy = tmp_path / "odd.yaml"
    policy.write_text(
        "name: odd\nlabels: {positive: a, negative: b}\nfields: {numeric: [x]}\ntargets: {auto_action_precision: 2, review_recall: 0.9}\n"
    )
    done = run_cli("dataset", "build", "--policy", str(policy), home=tmp_path / "home", check=False)
    assert done.returncode == 1
    assert "targets.auto_action_precision: Input should be less than or equal to 1" in _error_line(
        done
    )


def test_unreachable_mlflow_is_one_line(tmp_path):
    done = run_cli(
        "promote",
        "--policy",
        "spam",
        home=tmp_path / "home",
        check=False,
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",
    )
    assert done.returncode == 1
    assert _error_line(done).startswith("error: MLflow is unreachable at http://127.0.0.1:9")


def test_a_bad_file_changes_nothing(tmp_path, world_files):
    home = tmp_path / "home"
    lines = world_files["decisions"].read_text().splitlines()
    header = lines[0].split(",")
    row = lines[5].split(",")
    row[header.index("label")] = "maybe"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:5], ",".join(row), *lines[6:]]) + "\n")
    done = run_cli("decisions", "import", str(bad), "--policy", "spam", home=home, check=False)
    assert done.returncode == 1
    assert "row 5, field 'label': 'maybe' is not one of the policy's labels" in _error_line(done)
    assert not (home / "lake" / "decisions").exists()


def _weaker(tmp_path, name: str):
    """The policy on one numeric field and a tiny model: clearly worse."""
    raw = yaml.safe_load((REPO_ROOT / "policies" / f"{name}.yaml").read_text())
    raw["fields"] = {"text": [], "numeric": raw["fields"]["numeric"][-1:], "categorical": []}
    raw["training"] = {"n_estimators": 10, "num_leaves": 2}
    path = tmp_path / "weak" / f"{name}.yaml"
    # the rosters a policy with queues points to, beside it as in policies/
    shutil.copytree(REPO_ROOT / "policies" / "rosters", path.parent / "rosters")
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_spine_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    world = tmp_path / "world"
    simulated = run_cli(
        "simulate",
        "--policy",
        "scam",
        "--out",
        str(world),
        "--days",
        "14",
        "--items-per-day",
        "700",
        "--emerging-day",
        "14",
        "--golden-items",
        "240",
        "--format",
        "jsonl",
        "--json",
        home=home,
    )
    meta = json.loads(simulated.stdout)
    assert meta["items"] == 14 * 700 and meta["golden_items"] == 240
    assert meta["files"]["decisions"] == str(world / "decisions.jsonl")
    golden = run_cli("golden", "import", str(world / "golden.jsonl"), "--policy", "scam", home=home)
    assert "240 items (240 added, 0 already present)" in golden.stdout
    golden_again = json.loads(
        run_cli(
            "golden", "import", str(world / "golden.jsonl"), "--policy", "scam", "--json", home=home
        ).stdout
    )
    assert golden_again["added"] == 0 and golden_again["total"] == 240
    first = run_cli(
        "decisions", "import", str(world / "decisions.jsonl"), "--policy", "scam", home=home
    )
    again = run_cli(
        "decisions", "import", str(world / "decisions.jsonl"), "--policy", "scam", home=home
    )
    assert "already present" in first.stdout and " 0 decisions imported" in again.stdout
    third = json.loads(
        run_cli(
            "decisions",
            "import",
            str(world / "decisions.jsonl"),
            "--policy",
            "scam",
            "--json",
            home=home,
        ).stdout
    )
    assert third["added"] == 0 and third["already_present"] > 0
    assert third["flagged_reviewers"] is None  # nothing added: QA did not run

    version = run_cli("dataset", "build", "--policy", "scam", home=home).stdout.strip()
    assert version.startswith("d-")
    manifest = json.loads(
        run_cli("dataset", "build", "--policy", "scam", "--json", home=home).stdout
    )
    assert manifest["version"] == version and manifest["created"] is False

    trained = run_cli("train", "--policy", "scam", home=home)
    assert "registered version 1 (challenger)" in trained.stdout
    dry = run_cli("promote", "--policy", "scam", "--dry-run", home=home)
    assert "would be promoted" in dry.stdout and "nothing was recorded" in dry.stdout
    verdict = json.loads(run_cli("promote", "--policy", "scam", "--json", home=home).stdout)
    assert (
        verdict["outcome"] == "promoted"
        and verdict["challenger"] == 1
        and verdict["champion"] is None
    )
    assert all(check["passed"] for check in verdict["checks"])
    again = run_cli("promote", "--policy", "scam", home=home)
    assert "version 1 is already the champion" in again.stdout

    weak = run_cli("train", "--policy", str(_weaker(tmp_path, "scam")), home=home)
    assert "registered version 2 (challenger)" in weak.stdout
    dry = run_cli("promote", "--policy", "scam", "--dry-run", home=home, check=False)
    assert dry.returncode == 3 and "rejected" in dry.stdout, dry.stdout
    rejected = run_cli("promote", "--policy", "scam", "--json", home=home, check=False)
    assert rejected.returncode == 3
    assert json.loads(rejected.stdout)["outcome"] == "rejected"


def test_cycle_without_label_studio_fails_with_one_clear_line(tmp_path):
    from tests.conftest import free_port

    done = run_cli(
        "cycle",
        "--policy",
        "spam",
        home=tmp_path / "home",
        check=False,
        LABEL_STUDIO_URL=f"http://127.0.0.1:{free_port()}",
        FLYWHEEL_LABELSTUDIO_RETRIES="0",
    )
    assert done.returncode == 1
    assert "the cycle of spam failed" in done.stderr and "did not answer" in done.stderr
