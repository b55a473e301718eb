"""The demo's tables: readable at 80 columns and in a log, whatever the cycle brought."""

from rich.console import Console

from simulation.demo import LEGEND, CycleRow, _table


def _row(policy: str, cycle: int, **changes) -> CycleRow:
    row = CycleRow(
        policy=policy,
        cycle=cycle,
        items=1000,
        champion=12,
        promotion="promoted",
        golden_precision=0.98765,
        golden_recall=1.0,
        audit_fpr=0.00123,
        audit_fnr=0.16667,
        drifted_share=0.2857,
        score_drift=True,
        alerts_opened=[f"{policy}:drift:score", f"{policy}:emerging:airdrop, spot, whitelist"],
        flagged_reviewers=["rev-fox", "rev-with-a-long-name"],
        backlog=12345,
        pushed=1000,
        annotations=900,
        pattern_items=153,
        pattern_recall=0.9215,
        champion_verdict="overridden",
        appeals=14,
        appeals_of_benign=11,
    )
    for name, value in changes.items():
        setattr(row, name, value)
    return row


def _printed(*renderables) -> str:
    console = Console(width=80, record=True, force_terminal=False, soft_wrap=True)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def test_tables_fit_80_columns_with_every_cell_whole():
    rows = [_row("harassment-severe", 3), _row("spam", 3, golden_precision=None)]
    text = _printed(
        _table("Cycle 3", rows),
        _table("All cycles: spam", [_row("spam", c) for c in (1, 2, 3)], first="cycle"),
        f"Columns\n{LEGEND}",
    )
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80, text
    assert "…" not in text
    for cell in ("v12*", "0.988", "1.000", "0.0012", "0.167", "0.29+s", "12345", "0.92/153"):
        assert cell in text, cell
    assert "harassment-severe" in text and "cycle 2: alerts drift:score" in text
    assert "rev-with-a-long-name" in text and "emerging:airdrop, spot, whitelist" in text
    assert "appeals 14 (11 of benign items)" in text


def test_a_champion_passed_by_the_gate_has_no_star():
    text = _printed(_table("Cycle 1", [_row("spam", 1, champion_verdict="promoted")]))
    assert " v12 " in text and "v12*" not in text
