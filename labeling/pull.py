"""Bring reviewer decisions back from Label Studio, incrementally and idempotently.

A pull lists the tasks updated after the stored watermark (creating, updating or deleting an
annotation touches its task), in id order, page by page, then reads those tasks' annotations in
full through the export API, all into memory before anything is written: a server that fails
mid-pull leaves the lake and the watermark as they were.

Each annotation becomes a decision keyed by (item, reviewer, time), so an updated annotation is a
newer decision by the same reviewer and the older one stops counting. Annotations that disappeared
(deleted, or turned into a skip) are retracted. Skipped tasks are not decisions. An annotation
with an unexpected choice or field is reported and left out, never crashed on.

The new watermark is the newest update seen, but never later than the server's clock when the
pull began (less a margin): a task updated while we paged is read again next time. Tasks a push
imported but has not recorded in its ledger yet are recorded first (`labeling.push.recover`);
while a push still runs, its unrecorded tasks hold the watermark back, so their annotations are
read again once the ledger knows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from flywheel import clock
from flywheel.lake import Lake, utc_now
from flywheel.policy import Policy
from flywheel.progress import Progress, quiet
from flywheel.records import validate_decisions
from flywheel.settings import Settings
from labeling.appeals import settle
from labeling.client import CLOCK_MARGIN, WATERMARK_FORMAT, LabelStudioAPI, updated_after
from labeling.project import CHOICE, NOTES, annotator, live_projects
from labeling.push import TASK_KEY, recover


@dataclass
class PullReport:
    project_id: int
    tasks_seen: int = 0
    added: int = 0
    already_present: int = 0
    retracted: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    watermark: str | None = None


@dataclass(frozen=True)
class _Annotation:
    annotation_id: str
    task_id: str
    label: str
    reviewer_id: str
    decided_at: pd.Timestamp
    lead_time_s: float


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def reviewer_ids(api: LabelStudioAPI) -> dict[int, str]:
    """Label Studio users to stable reviewer ids: the username when one is set (as the
    reviewer ids of imported decision files are), else the e-mail; never the numeric id, which
    a reinstall changes."""
    users = api.call("listing users", lambda: api.sdk.users.list())
    return {u.id: (u.username or u.email or f"ls-user-{u.id}").lower() for u in users}


def _parse(
    task: dict, annotation: dict, policy: Policy, users: dict[int, str], notes: list[str]
) -> _Annotation | str | None:
    """A decision, a problem to report (the annotation is left out), or None for a skip.

    Whatever shape an annotation arrives in, it never stops the pull: one malformed answer
    would otherwise block every later pull on the same task. A lead time that is not a
    duration only loses the lead time (noted in `notes`)."""
    where = f"task {task.get('id')}, annotation {annotation.get('id')}"
    if annotation.get("was_cancelled"):
        return None
    results = annotation.get("result") or []
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        return f"{where}: result is not a list of objects; skipped"
    unexpected = sorted({str(r.get("from_name")) for r in results} - {CHOICE, NOTES})
    if unexpected:
        return f"{where}: unexpected field {', '.join(unexpected)}; skipped"
    choices = []
    for r in (r for r in results if r.get("from_name") == CHOICE):
        value = r.get("value")
        picked = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(picked, list):
            return f"{where}: a choice without a list of choices in its value; skipped"
        choices += picked
    if len(choices) != 1:
        return f"{where}: {len(choices)} choices instead of one; skipped"
    if choices[0] not in (policy.labels.positive, policy.labels.negative):
        return f"{where}: unexpected choice {choices[0]!r}; skipped"
    user = annotator(annotation)
    if user is None:
        return f"{where}: no reviewer (completed_by); skipped"
    stamp = annotation.get("updated_at") or annotation.get("created_at")
    try:
        decided_at = _utc(stamp)
    except (TypeError, ValueError):
        decided_at = pd.NaT
    if pd.isna(decided_at):
        return f"{where}: no valid time (updated_at, created_at: {stamp!r}); skipped"
    return _Annotation(
        annotation_id=str(annotation["id"]),
        task_id=str(task["id"]),
        label=choices[0],
        reviewer_id=users.get(user, f"ls-user-{user}"),
        decided_at=decided_at,
        lead_time_s=_lead_time(annotation.get("lead_time"), where, notes),
    )


def _lead_time(value: object, where: str, notes: list[str]) -> float:
    """Seconds the reviewer spent, or NaN (unknown) when Label Studio's figure is not one."""
    if value is None:
        return float("nan")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds >= 0 or seconds == float("inf"):
        notes.append(f"{where}: lead_time {value!r} is not a duration; kept without it")
        return float("nan")
    return seconds


def pull(
    policy: Policy,
    settings: Settings,
    lake: Lake,
    api: LabelStudioAPI,
    progress: Progress = quiet,
) -> PullReport:
    """Store the decisions made since the last pull; nothing is written if any read fails."""
    targets = live_projects(policy, lake, api, settings)
    project = next(iter(targets.values()))
    state = lake.labeling_state(policy.name)
    report = PullReport(project, watermark=state.get("watermark"))
    began = _utc(api.server_time()) - CLOCK_MARGIN
    since = state.get("watermark")
    changed: dict[int, list[dict]] = {p: [] for p in targets.values()}
    for target in targets.values():
        for task in api.iter_tasks(target, *([updated_after(since)] if since else [])):
            changed[target].append(task)
            progress("listing changed tasks", sum(map(len, changed.values())))
    everything = [t for listed in changed.values() for t in listed]
    report.tasks_seen = len(everything)
    if not everything:
        return report
    tasks = []
    for target, listed in changed.items():
        if listed:
            tasks += api.export_tasks(
                target,
                [t["id"] for t in listed],
                lambda done, before=len(tasks): progress(
                    "reading their annotations", before + done, len(everything)
                ),
            )
    changed = everything
    users = reviewer_ids(api)
    decisions: list[_Annotation] = []
    for task in tasks:
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict):
                report.problems.append(f"task {task.get('id')}: an annotation that is no object")
                continue
            parsed = _parse(task, annotation, policy, users, report.problems)
            if isinstance(parsed, _Annotation):
                # Label Studio stamps on the wall clock; a simulated home runs ahead of it
                on_clock = pd.Timestamp(clock.at(parsed.decided_at, settings))
                decisions.append(replace(parsed, decided_at=on_clock))
            elif isinstance(parsed, str):
                report.problems.append(parsed)
            else:
                report.skipped += 1
    with lake.lock(policy.name, "push", wait=False) as free:
        if free:
            recover(policy, lake, api)
    pushing = set() if free else {str(t["id"]) for t in tasks if TASK_KEY in (t.get("data") or {})}
    held = _store(policy, lake, tasks, decisions, report, pushing)
    unheard = settle(policy, lake)
    if unheard:
        report.problems.append(
            f"{unheard} overturned appeal(s) not heard by the reinstate webhook; tried again "
            "at the next pull"
        )
    stamps = {str(t["id"]): _utc(t["updated_at"]) for t in changed}
    waiting = [stamps[t] - pd.Timedelta(microseconds=1) for t in held if t in stamps]
    report.watermark = min([max(stamps.values()), began, *waiting]).strftime(WATERMARK_FORMAT)
    lake.write_labeling_state(
        policy.name,
        {
            **lake.labeling_state(policy.name),
            "watermark": report.watermark,
            "last_pull_at": utc_now().isoformat(),
        },
    )
    return report


def _store(
    policy: Policy,
    lake: Lake,
    tasks: list[dict],
    decisions: list[_Annotation],
    report: PullReport,
    pushing: set[str],
) -> set[str]:
    """Append the new decisions, then retract the annotations that are gone from seen tasks.
    Returns the tasks of `pushing` (imported by a push still running) the ledger lacks yet."""
    ledger = lake.pushed_tasks(policy.name)
    held: set[str] = set()
    if decisions:
        frame = pd.DataFrame([d.__dict__ for d in decisions])
        items = ledger.drop_duplicates("task_id", keep="last").set_index("task_id")
        known = frame["task_id"].isin(items.index)
        held = set(frame.loc[~known, "task_id"]) & pushing
        for task_id in frame.loc[~known, "task_id"]:
            if task_id not in held:
                report.problems.append(f"task {task_id} was not pushed by Flywheel; skipped")
        frame = frame[known].reset_index(drop=True)
        rows = items.loc[frame["task_id"]].reset_index(drop=True)
        frame = pd.concat(
            [
                frame,
                rows[["item_id", *policy.feature_columns]],
                rows["queue"].rename("source"),
            ],
            axis=1,
        )
        if not frame.empty:
            source = f"Label Studio projects of {policy.name}"
            validated = validate_decisions(frame, policy, source=source)
            result = lake.append_decisions(policy.name, validated.frame, source=source)
            report.added, report.already_present = result.added, result.already_present
    stored = lake.decisions(policy.name)
    if stored.empty or "annotation_id" not in stored:
        return held
    seen = {str(t["id"]) for t in tasks}
    live = {d.annotation_id for d in decisions}
    mine = stored[stored["task_id"].isin(seen) & stored["annotation_id"].ne("")]
    gone = sorted(set(mine["annotation_id"]) - live)
    report.retracted = lake.retract_annotations(policy.name, gone) if gone else 0
    return held
