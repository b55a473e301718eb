"""`flywheel demo`: the wheel turning on a simulated world, on real servers, in one command.

For each policy a world is simulated: reviewer history and a golden set to start from, then some
days of traffic per cycle, with an abuse pattern the first model never saw appearing mid-way.
The first champion is trained from the history. Then Label Studio and the scoring API start, and
each cycle sends its traffic through the API, turns the wheel (`flows/cycle.py`: pull, QA, build,
train, promote, monitor, push), reloads the API's champion and lets simulated reviewers decide
the pushed tasks in Label Studio, for the next cycle to learn from. Simulated users appeal some
of what the API auto-actioned (`simulation.users`), through the API, before the cycle pushes.

Only the simulated reviewers and users, the hidden campaign's operators (who probe the champion and reword
what it would not allow, `--pattern hidden`) and the last column of the table read the
simulator's truth: the share of the new pattern's violating items the API did not allow, which
shows the wheel learning.
Finished cycles are recorded, so a rerun continues where the last one stopped (or only reprints).
"""

from __future__ import annotations

import json
import sys
import textwrap
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from console import process as operations_console
from flows.cycle import cycle
from flows.ingest import ingest
from flows.retrain import retrain
from flywheel import clock
from flywheel.errors import FlywheelError, redact
from flywheel.files import atomic_path, write_json_atomic
from flywheel.ingest import import_decisions, import_golden
from flywheel.lake import Lake
from flywheel.policy import Policy, load_policy
from flywheel.registry import CHAMPION, check_reachable
from flywheel.roster import load_roster
from flywheel.runtime import load
from flywheel.settings import Settings
from labeling import server as labelstudio
from labeling.client import LabelStudioAPI
from labeling.project import projects as queue_projects
from labeling.tend import tend
from monitoring.monitor import key_figures
from monitoring.page import plots_page
from monitoring.report import MonitoringReport
from serving import process as scoring_api
from simulation import reviewers, users
from simulation.world import World, WorldConfig, evade, simulate, write_world

PATTERNS = ("signals", "hidden")


@dataclass(frozen=True)
class DemoConfig:
    cycles: int = 5
    emerging_cycle: int = 3  # the new pattern appears at the start of this cycle's traffic
    history_days: int = 20  # reviewed traffic before the first cycle: the first model's data
    days_per_cycle: int = 2
    items_per_day: int = 500
    seed: int = 7
    api_port: int = 8000
    console_port: int = 8095
    # "signals": the simulator's emerging pattern, whose signals put it in the review band;
    # "hidden": a campaign of phrases no item had and benign signals that the first model allows
    pattern: str = "signals"
    campaign_share: float = 0.1  # of each day's traffic, for the hidden pattern
    # the hidden campaign's operators reword each item the champion would not allow this many
    # times before posting it (0: they post blind)
    evasion_tries: int = 3
    # users whose item was auto-actioned appeal it: most of those wrongly actioned, a few
    # of the violators
    appeal_wrongly: float = 0.6
    appeal_rightly: float = 0.15
    # a policy with queues is worked by its roster, at this share of the paces it plans for
    # (a team a little slower than its plan, so that work waits and SLAs are tested)
    team_pace: float = 0.8
    # after the last cycle's push, the teams of policies with queues work on this many
    # simulated hours, so that the console ends on queues mid-day: ages, escalations
    hours_after: int = 12

    def world(self) -> WorldConfig:
        if not 1 <= self.emerging_cycle <= self.cycles:
            raise FlywheelError(f"demo: the emerging cycle must be between 1 and {self.cycles}")
        if self.pattern not in PATTERNS:
            raise FlywheelError(f"demo: the pattern is one of {', '.join(PATTERNS)}")
        days = self.history_days + self.cycles * self.days_per_cycle
        starts = self.history_days + (self.emerging_cycle - 1) * self.days_per_cycle
        hidden = self.pattern == "hidden"
        return WorldConfig(
            seed=self.seed,
            days=days,
            items_per_day=self.items_per_day,
            emerging_day=days if hidden else starts,
            history_days=self.history_days,
            campaign_day=starts if hidden else None,
            campaign_share=self.campaign_share,
        )

    def days(self, turn: int) -> range:
        first = self.history_days + (turn - 1) * self.days_per_cycle
        return range(first, first + self.days_per_cycle)


@dataclass
class CycleRow:
    """One policy's figures after one cycle: what the operator sees, plus the truth's check."""

    policy: str
    cycle: int
    items: int
    champion: int | None
    promotion: str
    golden_precision: float | None  # auto-action, the champion after this cycle
    golden_recall: float | None  # review, the champion after this cycle
    audit_fpr: float | None  # auto-action, production, blind audit
    audit_fnr: float | None  # allow, production, blind audit
    drifted_share: float | None
    score_drift: bool | None
    alerts_opened: list[str] = field(default_factory=list)
    flagged_reviewers: list[str] = field(default_factory=list)
    backlog: int | None = None
    pushed: int = 0
    annotations: int = 0
    pattern_items: int = 0  # violating items of the new pattern in this cycle's traffic
    pattern_recall: float | None = None  # their share the API sent to review or auto-action
    pattern_reworded: int = 0  # campaign items its operators reworded after probing the champion
    champion_verdict: str | None = None  # how the champion got its alias (promoted, overridden…)
    golden_precision_high: float | None = None  # the upper bounds of the two golden figures
    golden_recall_high: float | None = None
    auto_actioned: int = 0  # the cycle's items the API auto-actioned
    auto_action_violating: int = 0  # of them, violating by the simulator's truth
    pushed_by_queue: dict[str, int] = field(default_factory=dict)  # review, explore, audit, gold
    appeals: int = 0  # auto-actioned items their users appealed this cycle
    appeals_of_benign: int = 0  # of them, benign by the simulator's truth
    escalated: int = 0  # tasks moved to the head of their queue near their SLA, this cycle


def _prepare(policy: Policy, settings: Settings, config: WorldConfig, console: Console) -> World:
    """Simulate the policy's world into the home and import its golden set and history."""
    lake = Lake(settings.lake_dir)
    with console.status(f"{policy.name}: simulating {config.days} days of traffic…"):
        world = simulate(policy, config)
        paths = write_world(world, settings.root / "demo" / policy.name)
    golden = import_golden(paths["golden"], policy, lake).result
    decisions = import_decisions(paths["decisions"], policy, lake).result
    console.print(
        f"[green]✓[/] {policy.name}: {world.meta['items']:,} items (base rate "
        f"{world.meta['base_rate']:.1%}), new pattern from {world.meta['emerging_starts'][:10]}; "
        f"golden set {golden.version} ({golden.total} items); {decisions.added:,} decisions "
        f"imported, {decisions.already_present:,} already present"
    )
    return world


def _first_champion(name: str, console: Console) -> None:
    with console.status(f"{name}: retrain flow (dataset → train → promotion gate)…"):
        summary = retrain(name)
    reused = " (reused)" if summary.reused_model else ""
    console.print(
        f"[green]✓[/] {name}: dataset {summary.dataset_version}, model version "
        f"{summary.model_version}{reused}: {summary.outcome}"
    )


def _score(url: str, key: str, policy: Policy, items: pd.DataFrame, batch: int) -> pd.Series:
    """Send the items through the scoring API in batches; each item's decision."""
    columns = ["item_id", *policy.feature_columns]
    decisions: dict[str, str] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        for start in range(0, len(items), batch):
            chunk = json.loads(items.iloc[start : start + batch][columns].to_json(orient="records"))
            answer = client.post(
                "/v1/score/batch", json={"items": chunk, "policies": [policy.name]}, timeout=60
            )
            if answer.status_code != 200:
                raise FlywheelError(f"the scoring API answered {answer.status_code}: {answer.text}")
            for item in answer.json()["results"]:
                decisions[item["item_id"]] = item["results"][0]["decision"]
    return pd.Series(decisions)


def _probed(
    policy: Policy, items: pd.DataFrame, truth: pd.DataFrame, settings: Settings, config: DemoConfig
) -> tuple[pd.DataFrame, int]:
    """The cycle's items as the campaign's operators post them, having probed the champion
    (which the API serves) with each of theirs; and how many they reworded."""
    model = load(settings, policy, CHAMPION)
    if model is None:
        return items, 0
    campaign = truth.loc[items["item_id"], "is_campaign"].to_numpy()
    return evade(
        items,
        campaign,
        policy,
        config.seed,
        lambda frame: model.decide(model.score(frame)),
        config.evasion_tries,
    )


def _reload(url: str, admin_key: str) -> None:
    """Have the API load the champion the cycle may have promoted, before the next traffic."""
    answer = httpx.post(
        f"{url}/v1/admin/reload", headers={"Authorization": f"Bearer {admin_key}"}, timeout=120
    )
    if answer.status_code != 200:
        raise FlywheelError(f"reloading the scoring API failed: {answer.text}")


@dataclass
class _Cycle:
    """One policy's cycle while its simulated hours run: the traffic waiting for its hour,
    and what happened so far."""

    policy: Policy
    turn: int
    items: pd.DataFrame  # the cycle's traffic, with the hour of the cycle it arrives in
    ids: pd.Index  # every item id of the cycle's days (the pattern's are counted among them)
    reworded: int
    desk: reviewers.Desk | None  # a policy with queues: its open tasks, as its reviewers see them
    violating: pd.Series  # the world's truth by item id: what users who appeal know
    served: list[pd.Series] = field(default_factory=list)
    appealed: list[pd.Series] = field(default_factory=list)
    annotations: int = 0
    escalated: int = 0


def _arrivals(
    policy: Policy,
    turn: int,
    world: World,
    config: DemoConfig,
    settings: Settings,
    labelstudio_api: LabelStudioAPI,
    projects: dict[str, int],
) -> _Cycle:
    """The cycle's traffic, each item due in the hour of the cycle its world time falls in;
    for a policy with queues, the tasks open in them."""
    truth = world.truth[world.truth["set"] == "traffic"].set_index("item_id")
    ids = truth.index[truth["day"].isin(config.days(turn))]
    items = world.traffic[world.traffic["item_id"].isin(ids)]
    reworded = 0
    if config.pattern == "hidden" and config.evasion_tries:
        items, reworded = _probed(policy, items, truth, settings, config)
    first = config.days(turn)[0]
    day = truth.loc[items["item_id"], "day"].to_numpy()
    hour = pd.to_datetime(items["created_at"]).dt.hour.to_numpy()
    desk = None
    if policy.queues is not None:
        desk = reviewers.Desk.read(labelstudio_api, projects, policy.labeling.overlap)
    arriving = items.assign(hour=(day - first) * 24 + hour)
    truth = world.truth.drop_duplicates("item_id", keep="last").set_index("item_id")
    return _Cycle(policy, turn, arriving, ids, reworded, desk, truth["is_violating"])


def _hour(
    run: _Cycle,
    hour: int,
    moment: datetime,
    world: World,
    config: DemoConfig,
    settings: Settings,
    api_url: str,
    labelstudio_api: LabelStudioAPI,
) -> None:
    """One simulated hour of one policy: its traffic through the API, users appealing what
    was auto-actioned, and, where the policy has queues, the reviewers on shift at work and
    the queues tended (decisions in, late tasks escalated, status and forecast written)."""
    policy = run.policy
    items = run.items[run.items["hour"] == hour]
    keys = scoring_api.keys(settings)
    if len(items):
        served = _score(api_url, keys.api, policy, items, settings.max_batch_items)
        run.served.append(served)
        run.appealed.append(
            users.appeal(
                api_url,
                keys.api,
                policy.name,
                served,
                run.violating,
                np.random.default_rng([config.seed, run.turn, hour]),
                config.appeal_wrongly,
                config.appeal_rightly,
            )
        )
    if policy.queues is None:
        return
    run.annotations += reviewers.work_shift(
        policy,
        labelstudio_api,
        run.desk,
        load_roster(policy),
        list(config.world().reviewers),
        world.truth,
        moment,
        moment + timedelta(hours=1),
        np.random.default_rng([config.seed, run.turn, hour, zlib.crc32(policy.name.encode())]),
        config.team_pace,
    )
    lake = Lake(settings.lake_dir)
    # the forecast (seconds) twice a simulated day; escalation every hour
    days = 3 if hour % 12 == 11 else 0
    tended = tend(policy, settings, lake, labelstudio_api, clock.now(settings), days=days)
    run.escalated += tended.escalated
    if tended.escalated:
        run.desk.escalate(set(lake.escalations(policy.name)["task_id"].astype(str)))


def _close(
    run: _Cycle,
    since: datetime,
    world: World,
    config: DemoConfig,
    settings: Settings,
    api_url: str,
    labelstudio_api: LabelStudioAPI,
    projects: dict[str, int],
) -> CycleRow:
    """The end of a policy's cycle: the wheel turns, the API reloads its champion; a policy
    without queues has every pushed task decided at once (an unlimited team); then its
    decisions in and reviewer QA, as Label Studio's webhook starts in a deployment."""
    policy = run.policy
    summary = cycle(policy.name, since=since)
    _reload(api_url, scoring_api.keys(settings).admin)
    report = MonitoringReport.model_validate_json(Path(summary.report).read_text())
    figures = key_figures(report)
    if policy.queues is None:
        run.annotations += reviewers.work(
            policy,
            labelstudio_api,
            projects[""],
            list(config.world().reviewers),
            world.truth,
            seed=run.turn,
        )
    ingested = ingest(policy.name)
    truth = world.truth[world.truth["set"] == "traffic"].set_index("item_id")
    served = pd.concat(run.served) if run.served else pd.Series(dtype=object)
    appealed = pd.concat(run.appealed) if run.appealed else pd.Series(dtype=bool)
    pattern = truth.loc[run.ids][lambda t: t["is_emerging"] & t["is_violating"]].index
    caught = served.reindex(pattern).isin(["review", "auto_action"])
    auto = served.index[served.eq("auto_action")]
    return CycleRow(
        policy=policy.name,
        cycle=run.turn,
        items=len(run.items),
        champion=figures["champion"],
        promotion=summary.promotion,
        golden_precision=figures["golden_precision"],
        golden_recall=figures["golden_recall"],
        audit_fpr=figures["audit_auto_action_fpr"],
        audit_fnr=figures["audit_allow_fnr"],
        drifted_share=figures["drifted_share"],
        score_drift=figures["score_drift"],
        alerts_opened=report.alerts.opened,
        flagged_reviewers=ingested.flagged_reviewers,
        backlog=figures["open_tasks"],
        pushed=summary.tasks_pushed,
        annotations=run.annotations,
        pattern_items=len(pattern),
        pattern_recall=float(caught.mean()) if len(pattern) else None,
        pattern_reworded=run.reworded,
        champion_verdict=report.promotion.verdict if report.promotion else None,
        golden_precision_high=figures["golden_precision_high"],
        golden_recall_high=figures["golden_recall_high"],
        auto_actioned=len(auto),
        auto_action_violating=int(truth.loc[auto, "is_violating"].sum()),
        pushed_by_queue=summary.tasks_by_queue,
        appeals=len(appealed),
        appeals_of_benign=int((~appealed.astype(bool)).sum()),
        escalated=run.escalated,
    )


def _work_on(
    loaded: list[Policy],
    end: datetime,
    worlds: dict[str, World],
    config: DemoConfig,
    settings: Settings,
    api_url: str,
    labelstudio_api: LabelStudioAPI,
    projects: dict[str, dict[str, int]],
    progress: Progress,
) -> None:
    """The hours after the last cycle: no traffic, the queues' teams at work, tended hourly
    (once: a rerun whose clock is past them has nothing to do)."""
    queued = [p for p in loaded if p.queues is not None]
    if not queued or clock.now(settings) >= end + timedelta(hours=config.hours_after):
        return
    none = pd.DataFrame({"hour": pd.Series(dtype=int)})
    runs = [
        _Cycle(
            p,
            config.cycles + 1,
            none,
            pd.Index([]),
            0,
            reviewers.Desk.read(labelstudio_api, projects[p.name], p.labeling.overlap),
            pd.Series(dtype=bool),  # no traffic, so nothing to appeal
        )
        for p in queued
    ]
    shown = progress.add_task("after the last cycle", total=config.hours_after)
    for hour in range(config.hours_after):
        moment = end + timedelta(hours=hour)
        clock.advance(settings, moment)
        progress.update(shown, description=f"after the last cycle: {moment:%a %H:%M}")
        for run in runs:
            world = worlds[run.policy.name]
            _hour(run, hour, moment, world, config, settings, api_url, labelstudio_api)
        progress.advance(shown)
    clock.advance(settings, end + timedelta(hours=config.hours_after))


def _state_path(settings: Settings) -> Path:
    return settings.root / "demo" / "cycles.json"


def _done(settings: Settings, config: DemoConfig) -> tuple[list[CycleRow], datetime]:
    """Cycles finished by an earlier run of the same demo (another configuration starts over),
    and the simulated moment its first cycle began: the next midnight (UTC) of the home's
    clock when the demo first ran, so that simulated days line up with the rosters' shifts."""
    path = _state_path(settings)
    if not path.is_file():
        return [], pd.Timestamp(clock.now(settings)).ceil("D").to_pydatetime()
    state = json.loads(path.read_text())
    if state.get("config") != asdict(config):
        raise FlywheelError(
            f"this home ran the demo with other settings ({state.get('config')}); "
            "use another FLYWHEEL_HOME or `make clean`"
        )
    return [CycleRow(**row) for row in state["rows"]], datetime.fromisoformat(state["started"])


def _record(
    settings: Settings, config: DemoConfig, rows: list[CycleRow], started: datetime
) -> None:
    write_json_atomic(
        {
            "config": asdict(config),
            "started": started.isoformat(),
            "rows": [asdict(r) for r in rows],
        },
        _state_path(settings),
    )


def _cell(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return ", ".join(value) or "–"
    return str(value)


def _model(row: CycleRow) -> str:
    """The champion's version, starred when no gate passed it (an override, or a hand move)."""
    if row.champion is None:
        return "none"
    return f"v{row.champion}{'' if row.champion_verdict == 'promoted' else '*'}"


# Short headers so that a table fits 80 columns; LEGEND says what each one is.
COLUMNS = [
    ("model", "the champion after the cycle (*: no gate passed it, e.g. an override)"),
    ("gold P", "its golden-set precision at auto_action"),
    ("gold R", "its golden-set recall at review"),
    ("FPR", "production FPR of auto_action, blind-audit estimate"),
    ("FNR", "production FNR of allow, blind-audit estimate"),
    ("drift", "share of drifted fields (+s: the score drifted too)"),
    ("open", "open review tasks (backlog)"),
    ("pushed", "tasks pushed to Label Studio"),
    ("caught", "the new pattern's violating items the API did not allow / their number"),
]
LEGEND = "\n".join(
    [f"  {name:<7}{meaning}" for name, meaning in COLUMNS]
    + [
        "  (caught and the appeals' benign count are the simulator's truth; every other",
        "  figure comes from the platform)",
    ]
)


def _cells(row: CycleRow) -> list[str]:
    drift = f"{_cell(row.drifted_share, 2)}{'+s' if row.score_drift else ''}"
    caught = f"{_cell(row.pattern_recall, 2)}/{row.pattern_items}" if row.pattern_items else "–"
    return [
        _model(row),
        _cell(row.golden_precision),
        _cell(row.golden_recall),
        _cell(row.audit_fpr, 4),
        _cell(row.audit_fnr),
        drift,
        _cell(row.backlog),
        str(row.pushed),
        caught,
    ]


def _notes(first: str, rows: list[CycleRow], key) -> list[str]:
    """What does not fit a column (alerts opened, reviewers flagged, appeals made), one line
    per row."""
    lines = []
    for row in rows:
        alerts = ", ".join(a.split(":", 1)[1] for a in row.alerts_opened)
        parts = [
            f"alerts {alerts}" if alerts else "",
            f"flagged {', '.join(row.flagged_reviewers)}" if row.flagged_reviewers else "",
            f"escalated {row.escalated}" if row.escalated else "",
            f"appeals {row.appeals} ({row.appeals_of_benign} of benign items)"
            if row.appeals
            else "",
        ]
        if any(parts):
            name = key(row) if first == "policy" else f"cycle {key(row)}"
            line = f"{name}: " + "; ".join(p for p in parts if p)
            lines.append(
                textwrap.fill(
                    line,
                    78,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                    break_long_words=False,
                )
            )
    return lines


def _table(title: str, rows: list[CycleRow], first: str = "policy") -> Group:
    """One compact table (fits 80 columns, plain in a log) and its notes under it: per cycle,
    a row per policy; per policy (`first="cycle"`), a row per cycle."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    key = (lambda r: r.policy) if first == "policy" else (lambda r: str(r.cycle))
    # a long policy name folds onto a second line rather than being cut
    table.add_column(first, justify="left" if first == "policy" else "right", overflow="fold")
    for name, _ in COLUMNS:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(key(row), *_cells(row))
    return Group(table, *_notes(first, rows, key))


SUMMARY_SERIES = [
    ("golden_precision", "golden-set precision at auto_action (champion after the cycle)"),
    ("golden_recall", "golden-set recall at review"),
    ("audit_fpr", "production FPR of auto_action (blind audit)"),
    ("audit_fnr", "production FNR of allow (blind audit)"),
    ("drifted_share", "share of drifted fields"),
    ("alerts", "alerts opened"),
    ("pattern_recall", "new pattern: share of its violating items not allowed (simulator truth)"),
]


def write_summary(settings: Settings, rows: list[CycleRow], config: DemoConfig) -> Path:
    """The demo's figures per cycle as plots, one section per policy, in one HTML file."""
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame["alerts"] = frame["alerts_opened"].map(len)
    frames = {name: group.sort_values("cycle") for name, group in frame.groupby("policy")}
    summaries = {
        name: f"{len(group)} cycles; the new pattern appears in cycle {config.emerging_cycle}; "
        f"champion now v{group['champion'].iloc[-1]}."
        for name, group in frames.items()
    }
    page = plots_page(
        "Flywheel demo: the wheel over its cycles",
        frames,
        "cycle",
        SUMMARY_SERIES,
        summaries,
        "No cycle has run yet.",
    )
    path = settings.root / "demo" / "summary.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


@dataclass(frozen=True)
class DemoResult:
    """What a script needs after the demo (`flywheel demo --json`)."""

    rows: list[CycleRow]
    scoring_api: str
    labelstudio: str
    summary: Path
    console: str

    def payload(self) -> dict:
        return {
            "rows": [asdict(r) for r in self.rows],
            "scoring_api": self.scoring_api,
            "labelstudio": self.labelstudio,
            "summary": str(self.summary),
            "console": self.console,
        }


def run_demo(
    settings: Settings, policies: list[str], config: DemoConfig, console: Console
) -> DemoResult:
    """Everything the module docstring says; the per-cycle figures of every policy."""
    console.print(f"[bold]Flywheel demo[/] — home {settings.root}")
    check_reachable(settings)
    loaded = [load_policy(name, settings) for name in policies]
    rows, began = _done(settings, config)
    with ThreadPoolExecutor(1) as pool:
        # Label Studio installs on first use (minutes): let it do so while the first models train.
        started = pool.submit(labelstudio.start, settings)
        worlds = {p.name: _prepare(p, settings, config.world(), console) for p in loaded}
        for policy in loaded:
            _first_champion(policy.name, console)
        with console.status("Label Studio: installing on first use, then starting…"):
            started.result()
    console.print(f"[green]✓[/] Label Studio at {settings.labelstudio_url}")
    lake = Lake(settings.lake_dir)
    labelstudio_api = LabelStudioAPI(settings)
    # the rosters' reviewers log in before anything is pushed to their queues
    reviewers.ensure_users(labelstudio_api, list(config.world().reviewers))
    projects = {p.name: queue_projects(p, lake, labelstudio_api, settings) for p in loaded}
    clock.advance(settings, began)
    api_url = scoring_api.start(settings, config.api_port)
    console.print(f"[green]✓[/] scoring API at {api_url}")
    console_url = operations_console.start(settings, config.console_port)
    console.print(f"[green]✓[/] console at {console_url}")
    console.print(
        f"[green]✓[/] simulated clock: the first cycle begins {began:%Y-%m-%d %H:%M} UTC; "
        f"each cycle is {config.days_per_cycle} day(s) of traffic hour by hour"
    )

    span = config.days_per_cycle * 24
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    steps = progress.add_task("the wheel", total=config.cycles * (span + len(loaded)))
    with progress:
        for turn in range(1, config.cycles + 1):
            done = {(r.policy, r.cycle) for r in rows}
            due = [p for p in loaded if (p.name, turn) not in done]
            if not due:
                progress.advance(steps, span + len(loaded))
                continue
            since = began + timedelta(hours=(turn - 1) * span)
            runs = [
                _arrivals(
                    p, turn, worlds[p.name], config, settings, labelstudio_api, projects[p.name]
                )
                for p in due
            ]
            for hour in range(span):
                moment = since + timedelta(hours=hour)
                clock.advance(settings, moment)
                progress.update(
                    steps, description=f"cycle {turn}: {moment:%a %H:%M} (traffic, reviewers)"
                )
                for run in runs:
                    world = worlds[run.policy.name]
                    _hour(run, hour, moment, world, config, settings, api_url, labelstudio_api)
                progress.advance(steps)
            clock.advance(settings, since + timedelta(hours=span))
            fresh = []
            for run in runs:
                progress.update(steps, description=f"cycle {turn}: {run.policy.name} (the wheel)")
                world = worlds[run.policy.name]
                where = projects[run.policy.name]
                row = _close(run, since, world, config, settings, api_url, labelstudio_api, where)
                rows.append(row)
                fresh.append(row)
                _record(settings, config, rows, began)
                progress.advance(steps)
            progress.advance(steps, len(loaded) - len(due))
            pattern = " (the new pattern appears)" if turn == config.emerging_cycle else ""
            console.print(_table(f"Cycle {turn}{pattern}", fresh))

        end = began + timedelta(hours=config.cycles * span)
        _work_on(
            loaded, end, worlds, config, settings, api_url, labelstudio_api, projects, progress
        )

    summary = write_summary(settings, rows, config)
    for policy in loaded:
        mine = sorted((r for r in rows if r.policy == policy.name), key=lambda r: r.cycle)
        console.print(_table(f"All cycles: {policy.name}", mine, first="cycle"))
    console.print(f"Columns\n{LEGEND}", markup=False)
    first = loaded[0]
    example = worlds[first.name].traffic.iloc[-1][["item_id", *first.feature_columns]]
    request = {"item": json.loads(example.to_json()), "policies": [first.name]}
    _addresses(settings, api_url, console_url, summary, json.dumps(request), console)
    return DemoResult(rows, api_url, settings.labelstudio_url, summary, console_url)


def _addresses(
    settings: Settings,
    api_url: str,
    console_url: str,
    summary: Path,
    request: str,
    console: Console,
) -> None:
    keys = scoring_api.keys(settings)
    creds = labelstudio.credentials(settings)
    bin_dir = Path(sys.executable).parent
    console.print("[bold]Still running[/] (stop them with: make stop)")
    console.print(
        f"  Label Studio  {settings.labelstudio_url}  (user {creds.username}, password in "
        f"{settings.labelstudio_dir / 'credentials.json'})"
    )
    console.print(
        f"  scoring API   {api_url}/docs  (keys in {settings.root / 'serving' / 'keys.json'})"
    )
    console.print(
        f"    curl -s {api_url}/v1/score -H 'Authorization: Bearer {keys.api}' -d '{request}'",
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"  console       {console_url}  (key in {operations_console.key_file(settings)})"
    )
    console.print("[bold]Look further[/]")
    console.print(f"  summary       {summary}")
    console.print(f"  health page   {Lake(settings.lake_dir).health_page}")
    console.print(
        f"  MLflow        {bin_dir / 'mlflow'} ui --backend-store-uri {redact(settings.tracking_uri)}"
    )
    console.print(
        f"  Evidently     {bin_dir / 'evidently'} ui --workspace "
        f"{Lake(settings.lake_dir).workspace}"
    )
    console.print(f"  lake          {settings.lake_dir}  (Parquet, DuckDB-readable)")
