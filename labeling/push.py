"""Push the next tasks to Label Studio: the review queue, exploration, the blind audit and gold
checks.

Sampling is `labeling.sample` and `labeling.explore`; this module turns the samples into tasks,
imports them and records each pushed task in the lake's ledger (queue, why it was chosen, task
id, inclusion probability, the item's fields), chunk by chunk, so a push that fails half-way
never pushes the same item to a queue again.

Each task carries an opaque key (`data.flywheel_task`), and each chunk is written down as an
intent before its import: an import whose answer is lost is retried only for the tasks Label
Studio did not create, and the tasks of a push that died between import and ledger are found by
their keys and recorded by the next push or pull. One push per policy runs at a time.

Review-queue tasks carry the champion's score as a Label Studio prediction and the features that
pushed the score up; exploration tasks and gold checks look the same and are spread among them,
so reviewers cannot tell them apart. Audit tasks carry neither: the blind audit must not anchor
reviewers on the model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from flywheel.audit import audit_plan
from flywheel.lake import Lake, utc_now
from flywheel.novelty import novelty, training_items
from flywheel.policy import Policy
from flywheel.predictions import latest_per_item, read_predictions
from flywheel.progress import Progress, quiet
from flywheel.roster import load_roster
from flywheel.runtime import Model, load
from flywheel.settings import Settings
from labeling.client import CLOCK_MARGIN, LabelStudioAPI
from labeling.dispatch import Routed, dispatch, open_work
from labeling.escalate import escalate
from labeling.explore import ExploreInputs, exploration_sample
from labeling.project import check_users, choice_result, live_projects
from labeling.qa import gold_mix, read_qa
from labeling.sample import QUEUES, audit_sample, gold_sample, review_queue

CHUNK = 1000
TASK_KEY = "flywheel_task"  # the task's own key in its data, unique to each task pushed
LEDGER_COLUMNS = [
    "item_id",
    "queue",
    "reason",
    "task_id",
    "task_key",
    "project_id",
    "sampling_prob",
    "priority",
    "decision",
    "score",
    "model_version",
    "pushed_at",
    "review_queue",  # the policy's review queue it was routed to ("" without queues)
]


@dataclass(frozen=True)
class PushReport:
    project_id: int
    review: int
    audit: int
    gold: int
    assisted_by: str | None
    explore: int = 0
    appeal: int = 0  # appeals of auto-actioned items (`flywheel.appeals`)
    # per review queue (a policy with queues): pushed, room within its SLA, open, candidates
    routed: dict[str, dict] = field(default_factory=dict)
    escalated: int = 0  # open tasks moved to the head of their queue near their SLA

    @property
    def total(self) -> int:
        return self.review + self.explore + self.audit + self.gold + self.appeal

    @property
    def by_queue(self) -> dict[str, int]:
        return {q: getattr(self, q) for q in QUEUES}


def _signals(row: pd.Series, policy: Policy) -> str:
    names = [*policy.fields.numeric, *policy.fields.categorical]
    return " · ".join(f"{n} = {row[n]}" for n in names if n in row and pd.notna(row[n]))


def _assist(score: float, decision: str, reasons: list[dict]) -> str:
    why = ", ".join(f"{r['feature']} (+{r['weight']})" for r in reasons)
    return f"Model score {score:.2f} ({decision})" + (f". Pushed up by: {why}" if why else "")


def _with_assistance(frame: pd.DataFrame, model: Model | None, k: int) -> pd.DataFrame:
    """Score and explain items for reviewers (gold items get scored here, like any other)."""
    if model is None or frame.empty:
        return frame.assign(assist="")
    from flywheel.explain import top_contributions

    scores = model.score(frame)
    thresholds = model.ref.thresholds
    decisions = thresholds.decide(scores)
    reasons = top_contributions(model, frame, k)
    return frame.assign(
        score=scores,
        decision=decisions,
        model_version=str(model.ref.version),
        assist=[_assist(s, d, r) for s, d, r in zip(scores, decisions, reasons, strict=True)],
    )


def _appeal_notes(tasks: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """What the reviewer of an appeal sees: the original decision, the model version and
    score that made it, and the user's reason."""
    notes = [
        f"Appeal of auto_action by {policy.name} v{row.model_version} (score {row.score:.2f}). "
        f"The user says: {str(row.reason).removeprefix('appeal: ')}"
        for row in tasks.itertuples()
    ]
    return tasks.assign(assist=notes)


def _task(row: pd.Series, policy: Policy, model: Model | None) -> dict:
    data = {name: (None if pd.isna(row[name]) else row[name]) for name in policy.feature_columns}
    data |= {
        "item_id": row["item_id"],
        "signals": _signals(row, policy),
        "assist": row["assist"],
        TASK_KEY: row["task_key"],
    }
    if row.get("review_queue"):
        data["priority"] = float(row["harm"])  # the "By harm" tab's order
    task: dict = {"data": _plain(data)}
    if row["assist"] and model is not None:
        choice = policy.label_value(bool(row["score"] >= 0.5))
        task["predictions"] = [
            {
                "model_version": f"{model.ref.name}:v{model.ref.version}",
                "score": float(row["score"]),
                "result": choice_result(policy, choice),
            }
        ]
    return task


def _plain(data: dict) -> dict:
    """JSON-ready values (numpy scalars are not)."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in data.items()}


def _interleave(main: pd.DataFrame, gold: pd.DataFrame) -> pd.DataFrame:
    """`gold` spread evenly through `main` (gold checks through every task, exploration through
    the review queue), so they arrive like any other."""
    if gold.empty:
        return main
    if main.empty:
        return gold
    slots = np.linspace(0, len(main), num=len(gold) + 2)[1:-1]
    order = np.concatenate([np.arange(len(main), dtype=float), slots - 0.5])
    both = pd.concat([main, gold], ignore_index=True)
    return both.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def champion(settings: Settings, policy: Policy) -> Model | None:
    """The serving model, to score and explain tasks; None before the first promotion."""
    return load(settings, policy, "champion")


def plan(
    policy: Policy,
    predictions: pd.DataFrame,
    golden: pd.DataFrame,
    ledger: pd.DataFrame,
    now,
    explore: ExploreInputs | None = None,
    violating_gold: float = 0.5,
    queued: bool = False,
    appeals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The tasks to push next, with their queue and why, in push order (no Label Studio);
    `violating_gold` is the share of gold checks drawn from violating golden items. `queued`
    (a policy with review queues): every candidate of the review band and no gold checks,
    which `labeling.dispatch` adds per queue once it knows what fits."""
    pushed = {
        q: set(ledger.loc[ledger["queue"] == q, "item_id"]) if not ledger.empty else set()
        for q in QUEUES
    }
    latest = latest_per_item(predictions)
    if latest.empty:
        review = audit = explored = latest.assign(priority=[], sampling_prob=[])
    else:
        rates = audit_plan(latest, policy, now).rates
        audit = audit_sample(latest, policy, pushed["audit"], rates)
        # drawn after the audit and apart from it: the audit's sample stays as designed
        taken = set().union(*pushed.values(), audit["item_id"])
        explore = explore or ExploreInputs()
        explored = exploration_sample(
            _recent_allowed(latest, policy, now), policy, explore, taken, _last_push(ledger)
        )
        limit = len(latest) if queued else policy.labeling.review_batch - len(explored)
        review = review_queue(latest, policy, now, pushed["review"], limit)
    reviewed = _interleave(
        review.assign(queue="review", reason="scored in the review band"),
        explored.drop(columns="stratum", errors="ignore").assign(queue="explore", priority=np.nan),
    )
    parts = [
        _appealed(appeals, pushed["appeal"]),
        reviewed,
        audit.assign(queue="audit", reason="blind audit", priority=np.nan),
    ]
    others = pd.concat([p for p in parts if not p.empty] or parts[1:], ignore_index=True)
    if queued:
        return others
    gold = gold_sample(golden, policy, len(others), pushed["gold"], violating_gold)
    gold = gold.drop(columns=["label"], errors="ignore").assign(
        queue="gold",
        reason="gold check",
        sampling_prob=1.0,
        priority=np.nan,
        decision=None,
        score=np.nan,
    )
    return _interleave(others, gold)


def _appealed(appeals: pd.DataFrame | None, pushed: set[str]) -> pd.DataFrame:
    """Appeals not pushed yet, first: a user is waiting, and the statistics do not depend on
    them (every appeal is decided, so nothing is sampled)."""
    if appeals is None or appeals.empty:
        return pd.DataFrame()
    waiting = appeals[~appeals["item_id"].isin(pushed)]
    return waiting.assign(
        queue="appeal",
        reason="appeal: " + waiting["reason"].astype(str),
        sampling_prob=1.0,
        priority=np.nan,
        model_version=waiting["model_version"].astype(str),
    ).drop(columns=["appeal_id", "appealed_at"], errors="ignore")


def _last_push(ledger: pd.DataFrame) -> pd.Timestamp | None:
    """When exploration last pushed (None before its first push)."""
    explored = ledger[ledger["queue"] == "explore"] if not ledger.empty else ledger
    if explored.empty or "pushed_at" not in explored:
        return None
    return pd.to_datetime(explored["pushed_at"], utc=True).max()


def _recent_allowed(latest: pd.DataFrame, policy: Policy, now) -> pd.DataFrame:
    """Allowed items of the monitoring window: what exploration draws from."""
    since = now - pd.Timedelta(days=policy.monitoring.window_days)
    scored = pd.to_datetime(latest["scored_at"], utc=True)
    return latest[latest["decision"].eq("allow") & (scored >= since)]


def explore_inputs(
    policy: Policy, lake: Lake, model: Model | None, predictions: pd.DataFrame, now
) -> ExploreInputs:
    """Novelty of the window's allowed items against the champion's training data, and the
    latest monitoring run's cluster representatives (empty before a champion or a run)."""
    if model is None or policy.labeling.explore_budget == 0:
        return ExploreInputs()
    allowed = _recent_allowed(latest_per_item(predictions), policy, now)
    reference = training_items(lake, policy, model.ref, policy.monitoring.drift_sample)
    far = (
        pd.Series(novelty(reference, allowed, policy), index=allowed["item_id"].to_numpy())
        if reference is not None and not allowed.empty
        else pd.Series(dtype=float)
    )
    emerging = lake.latest_emerging(policy.name) or {}
    representatives = {
        item: ", ".join(cluster["top"][:3])
        for cluster in emerging.get("clusters", [])
        for item in cluster.get("representatives", [])
    }
    return ExploreInputs(far, representatives, model.ref.thresholds.review)


def push(
    policy: Policy,
    settings: Settings,
    lake: Lake,
    api: LabelStudioAPI,
    progress: Progress = quiet,
) -> PushReport:
    """Sample from the prediction log and the golden set, and push what was not pushed before
    (waiting for another push of the policy to finish first)."""
    with lake.lock(policy.name, "push"):
        targets = live_projects(policy, lake, api, settings)
        if policy.queues is not None:
            check_users(load_roster(policy), api)
        recover(policy, lake, api)
        escalated = escalate(policy, lake, api, utc_now()) if policy.queues else 0
        report = _push(policy, settings, lake, api, targets, progress)
        return replace(report, escalated=escalated)


def _planned(
    policy: Policy, settings: Settings, lake: Lake, model: Model | None, now: pd.Timestamp
) -> tuple[pd.DataFrame, Routed | None]:
    """The tasks to push, and for a policy with queues what each queue got and had room for."""
    golden = lake.golden(policy.name)
    golden_frame = golden.frame if golden is not None else pd.DataFrame(columns=["item_id"])
    predictions = read_predictions(settings, policy)
    ledger = lake.pushed_tasks(policy.name)
    mix = gold_mix(read_qa(policy, lake))
    explore = explore_inputs(policy, lake, model, predictions, now)
    appeals = lake.appeals(policy.name)
    if policy.queues is None:
        tasks = plan(policy, predictions, golden_frame, ledger, now, explore, mix, appeals=appeals)
        return tasks, None
    candidates = plan(
        policy, predictions, golden_frame, ledger, now, explore, mix, queued=True, appeals=appeals
    )
    pushed_gold = (
        set(ledger.loc[ledger["queue"] == "gold", "item_id"]) if not ledger.empty else set()
    )
    emerging = {
        m
        for c in (lake.latest_emerging(policy.name) or {}).get("clusters", [])
        for m in c.get("members", [])
    }
    owed = open_work(ledger, lake.decisions(policy.name), policy.labeling.overlap)
    routed = dispatch(
        candidates, golden_frame, pushed_gold, policy, load_roster(policy), owed, emerging, now, mix
    )
    return routed.tasks, routed


def _push(
    policy: Policy,
    settings: Settings,
    lake: Lake,
    api: LabelStudioAPI,
    targets: dict[str, int],
    progress: Progress,
) -> PushReport:
    model = champion(settings, policy)
    now = pd.Timestamp(utc_now())
    tasks, routed = _planned(policy, settings, lake, model, now)
    first = next(iter(targets.values()))
    if tasks.empty:
        return PushReport(first, 0, 0, 0, None, routed=_record_routing(policy, lake, routed, tasks))
    blind = tasks["queue"].eq("audit")
    appealed = tasks["queue"].eq("appeal")
    assisted = _with_assistance(tasks[~blind & ~appealed], model, policy.labeling.assist_features)
    tasks = pd.concat(
        [assisted, tasks[blind].assign(assist=""), _appeal_notes(tasks[appealed], policy)]
    ).sort_index()
    tasks = tasks.assign(task_key=[uuid.uuid4().hex for _ in range(len(tasks))])
    if "review_queue" not in tasks:
        tasks = tasks.assign(review_queue="", harm=np.nan)
    since = api.server_time() - CLOCK_MARGIN
    progress("pushing tasks", 0, len(tasks))
    done = 0
    for name, group in tasks.groupby("review_queue", sort=False):
        project = targets[str(name)]
        for start in range(0, len(group), CHUNK):
            chunk = group.iloc[start : start + CHUNK]
            rows = _ledger(chunk, project, policy)
            intent = lake.write_push_intent(policy.name, rows.assign(since=since))
            payload = [_task(row, policy, model) for _, row in chunk.iterrows()]
            created = api.import_tasks(project, payload, TASK_KEY, since)
            lake.record_pushed(policy.name, _created(rows, created))
            intent.unlink()
            done += len(chunk)
            progress("pushing tasks", done, len(tasks))
    counts = tasks["queue"].value_counts()
    return PushReport(
        first,
        int(counts.get("review", 0)),
        int(counts.get("audit", 0)),
        int(counts.get("gold", 0)),
        f"{model.ref.name} v{model.ref.version}" if model is not None else None,
        int(counts.get("explore", 0)),
        int(counts.get("appeal", 0)),
        _record_routing(policy, lake, routed, tasks),
    )


def _record_routing(
    policy: Policy, lake: Lake, routed: Routed | None, tasks: pd.DataFrame
) -> dict[str, dict]:
    """Per review queue: tasks pushed, room within its SLA, work already open, candidates and
    those left waiting in the log;
    kept in the labeling state once the push is done, for `flywheel queues status`."""
    if routed is None:
        return {}
    empty = pd.Series(dtype=int)
    pushed = tasks["review_queue"].value_counts() if not tasks.empty else empty
    others = (
        tasks.loc[tasks["queue"] != "gold", "review_queue"].value_counts()
        if not tasks.empty
        else empty
    )
    routing = {
        q: {
            "pushed": int(pushed.get(q, 0)),
            "room": round(routed.room[q], 1),
            "open": round(routed.open[q], 1),
            "candidates": routed.waiting[q],
            "waiting": routed.waiting[q] - int(others.get(q, 0)),  # left in the log
        }
        for q in routed.room
    }
    state = lake.labeling_state(policy.name)
    # when the first routed work arrived: arrivals are counted from then (`labeling.status`)
    since = state.get("queues_since") or (routed.since.isoformat() if routed.since else None)
    lake.write_labeling_state(policy.name, {**state, "routed": routing, "queues_since": since})
    return routing


def recover(policy: Policy, lake: Lake, api: LabelStudioAPI) -> int:
    """Record in the ledger the tasks of imports that never got there (the process died, or
    the import failed for good after creating some): found in Label Studio by their keys, in
    the project each was sent to. The rest of such an import was never created and is planned
    again by the next push. Run with the policy's push lock held; returns how many tasks were
    recorded."""
    recorded = 0
    for path, rows in lake.push_intents(policy.name):
        since = pd.Timestamp(rows["since"].min()).to_pydatetime()
        for project, part in rows.groupby("project_id"):
            found = api.created_since(int(project), since, TASK_KEY, set(part["task_key"]))
            made = part[part["task_key"].isin(found)].drop(columns="since")
            if not made.empty:
                lake.record_pushed(policy.name, _created(made, found))
                recorded += len(made)
        path.unlink()
    return recorded


def _created(rows: pd.DataFrame, task_ids: dict[str, int]) -> pd.DataFrame:
    """Ledger rows with the task ids Label Studio gave them."""
    return rows.assign(task_id=[str(task_ids[key]) for key in rows["task_key"]])


def _ledger(chunk: pd.DataFrame, project: int, policy: Policy) -> pd.DataFrame:
    """The ledger's rows for a chunk of tasks, before Label Studio gives them ids."""
    frame = chunk.reset_index(drop=True).assign(
        task_id="",
        project_id=project,
        pushed_at=pd.Timestamp(utc_now()),
    )
    for column in ("score", "priority", "sampling_prob"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("decision", "model_version", "reason", "review_queue"):
        frame[column] = frame.get(column, pd.Series(None, index=frame.index)).astype("string")
    return frame[[*LEDGER_COLUMNS, *policy.feature_columns]]
