"""The promotion gate against a real registry: first model, dry run, a worse challenger
rejected and then promoted by override, a better one promoted."""

import pytest
import yaml

from flywheel.errors import FlywheelError
from flywheel.policy import load_policy
from flywheel.registry import CHALLENGER, CHAMPION, connect, get_version
from flywheel.settings import REPO_ROOT
from training.promote import promote
from training.train import train


def _aliases(settings):
    client = connect(settings)
    return {
        alias: getattr(get_version(client, "spam", alias), "version", None)
        for alias in (CHAMPION, CHALLENGER)
    }


def _weaker_spam(tmp_path):
    """The spam policy with only its two categories (surface and country, whose risk differs
    little) and a tiny model: clearly worse. (Without the text alone it is not: the simulated
    accounts' numeric signals separate spam well, and at the champion's operating points a
    golden set of 72 violations cannot tell the two apart.)"""
    raw = yaml.safe_load((REPO_ROOT / "policies" / "spam.yaml").read_text())
    raw["fields"]["text"] = []
    raw["fields"]["numeric"] = []
    raw["simulation"].pop("numeric", None)
    raw["training"] = {"n_estimators": 10, "num_leaves": 2}
    path = tmp_path / "weak" / "spam.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(raw))
    return load_policy(str(path))


def test_the_gate_through_a_model_lifecycle(stocked, settings, spam, tmp_path):
    first = train(spam, settings).model

    dry = promote(spam, settings, dry_run=True)
    assert dry.outcome == "would be promoted" and not dry.promoted
    assert _aliases(settings) == {CHAMPION: None, CHALLENGER: first.version}
    assert "promotion_verdict" not in get_version(connect(settings), "spam", first.version).tags

    verdict = promote(spam, settings)
    assert verdict.promoted and verdict.outcome == "promoted"
    assert _aliases(settings) == {CHAMPION: first.version, CHALLENGER: first.version}
    assert promote(spam, settings).note == f"version {first.version} is already the champion"

    weak = train(_weaker_spam(tmp_path), settings).model
    rejected = promote(spam, settings)
    assert rejected.outcome == "rejected" and not rejected.promoted
    failed = [c.name for c in rejected.checks if not c.passed]
    assert any("recall" in name or "FPR" in name for name in failed), rejected.checks
    assert _aliases(settings) == {CHAMPION: first.version, CHALLENGER: weak.version}
    tags = get_version(connect(settings), "spam", weak.version).tags
    assert tags["promotion_verdict"] == "rejected"
    assert tags["promotion_compared_to"] == str(first.version)
    assert all(c.detail in tags["promotion_reasons"] for c in rejected.checks if not c.passed)

    with pytest.raises(FlywheelError, match="needs a reason"):
        promote(spam, settings, override_reason="  ")
    forced = promote(spam, settings, override_reason="campaign hotfix, approved by on-call")
    assert forced.promoted and forced.outcome == "promoted by override"
    assert _aliases(settings)[CHAMPION] == weak.version
    tags = get_version(connect(settings), "spam", weak.version).tags
    assert tags["promotion_verdict"] == "overridden"
    assert tags["promotion_override_reason"] == "campaign hotfix, approved by on-call"
    assert tags["promotion_failed_checks"] == "; ".join(failed)

    equal = train(spam, settings, force=True).model
    assert equal.version == weak.version + 1
    assert promote(spam, settings).promoted, "the full model passes against the weak one"
    assert _aliases(settings)[CHAMPION] == equal.version


def test_promote_needs_a_challenger_and_a_golden_set(settings, spam, lake, world_files):
    from flywheel.ingest import import_decisions

    with pytest.raises(
        FlywheelError, match="no challenger for spam: run `flywheel train --policy spam`"
    ):
        promote(spam, settings)
    import_decisions(world_files["decisions"], spam, lake)
    train(spam, settings)
    with pytest.raises(FlywheelError, match="no golden set for spam"):
        promote(spam, settings)
    assert _aliases(settings)[CHAMPION] is None


def test_the_champion_moves_only_from_where_the_gate_read_it(stocked, settings, spam, monkeypatch):
    """Another writer moves `champion` while the gate scores (by hand, or a gate of another
    home): the gate refuses to replace a model it was not compared with, and records nothing."""
    import training.promote as gate

    first = train(spam, settings).model
    assert promote(spam, settings).promoted
    second = train(spam, settings, force=True).model
    third = train(spam, settings, force=True).model  # the challenger now
    scored = gate.load_model

    def meanwhile(client, ref, *args, **kwargs):
        if ref.version == first.version:  # the gate is reading the champion it will compare with
            client.set_registered_model_alias("spam", CHAMPION, str(second.version))
        return scored(client, ref, *args, **kwargs)

    monkeypatch.setattr(gate, "load_model", meanwhile)
    with pytest.raises(FlywheelError, match="champion moved from version 1 to version 2"):
        promote(spam, settings)
    assert _aliases(settings) == {CHAMPION: second.version, CHALLENGER: third.version}
    assert "promotion_verdict" not in get_version(connect(settings), "spam", third.version).tags

    monkeypatch.setattr(gate, "load_model", scored)
    again = promote(spam, settings)  # against the champion that serves now
    assert again.champion.version == second.version and again.promoted


def test_two_gates_at_once_take_turns(stocked, settings, spam):
    """Both would promote the same challenger: the second waits and finds it promoted."""
    from concurrent.futures import ThreadPoolExecutor

    first = train(spam, settings).model
    with ThreadPoolExecutor(2) as pool:
        verdicts = [v.result() for v in [pool.submit(promote, spam, settings) for _ in range(2)]]
    assert sorted(v.promoted for v in verdicts) == [False, True]
    assert any(v.note == f"version {first.version} is already the champion" for v in verdicts)
