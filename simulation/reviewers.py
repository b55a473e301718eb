"""Simulated reviewers working in Label Studio, so the loop runs unattended in demos and tests.

Each simulated reviewer is a real Label Studio user; they answer open tasks through the API with
the simulator's accuracies (`simulation.world.verdicts`) against the world's ground truth, up to
the project's overlap, never twice on one task. Nothing else in Flywheel knows they are simulated.

A policy without queues gets an unlimited team (`work`: every open task is decided at once). A
policy with queues gets its roster (`work_shift`): each reviewer works only the queues the
roster gives them, only while on shift, and only as many tasks as their pace allows, so work
waits, ages and can miss its SLA.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from flywheel.errors import FlywheelError
from flywheel.policy import Policy
from flywheel.roster import Roster
from labeling.client import LabelStudioAPI, fewer_annotations_than
from labeling.escalate import ESCALATED
from labeling.project import annotator, choice_result
from simulation.world import Reviewer, verdicts

EMAIL_DOMAIN = "reviewers.flywheel.local"
_WORKERS = 4  # Label Studio's server answers a few writes at once; more only queue


def email(reviewer_id: str) -> str:
    return f"{reviewer_id}@{EMAIL_DOMAIN}"


def ensure_users(api: LabelStudioAPI, reviewers: list[Reviewer]) -> dict[str, int]:
    """A Label Studio user per reviewer, in the admin's organization; reviewer id -> user id."""
    org = api.call("reading the organization", lambda: api.sdk.users.whoami()).active_organization
    users = {u.email: u.id for u in api.call("listing users", lambda: api.sdk.users.list())}
    ids = {}
    for reviewer in reviewers:
        address = email(reviewer.reviewer_id)
        if address not in users:
            user = api.call(
                f"creating user {address}",
                lambda address=address, name=reviewer.reviewer_id: api.sdk.users.create(
                    email=address, username=name, first_name=name
                ),
            )
            # a user made through the API has no organization, and would see no project
            api.call(
                f"adding {address} to the organization",
                lambda uid=user.id: api.sdk.users.update(id=uid, active_organization=org),
            )
            users[address] = user.id
        ids[reviewer.reviewer_id] = users[address]
    return ids


def work(
    policy: Policy,
    api: LabelStudioAPI,
    project: int,
    reviewers: list[Reviewer],
    truth: pd.DataFrame,
    seed: int = 0,
    borderline_drop: float = 0.15,
    limit: int | None = None,
) -> int:
    """Answer open tasks until each has the project's overlap; returns the annotations made."""
    users = ensure_users(api, reviewers)
    by_user = {users[r.reviewer_id]: r for r in reviewers}
    truth = truth.drop_duplicates("item_id", keep="last").set_index("item_id")
    overlap = policy.labeling.overlap
    rng = np.random.default_rng(seed)
    jobs: list[tuple[int, Reviewer, str]] = []
    for task in _open(api, project, overlap):
        item = task["data"].get("item_id")
        if item not in truth.index:
            continue
        done = _annotators(task)
        free = [u for u in by_user if u not in done]
        for user in rng.permutation(free)[: max(overlap - len(done), 0)]:
            jobs.append((task["id"], by_user[int(user)], item))
        if limit is not None and len(jobs) >= limit:
            break
    return _answer(policy, api, users, jobs, truth, rng, borderline_drop)


@dataclass
class Desk:
    """The open tasks of a policy's queues as its simulated reviewers see them. Read from
    Label Studio after each push, then kept up to date with the reviewers' own answers and
    with escalations (in a simulation nothing else changes a task between pushes), so that a
    simulated hour of work costs no reads."""

    tasks: dict[str, list[dict]]  # queue -> its open tasks (data, id, who answered)

    @classmethod
    def read(cls, api: LabelStudioAPI, projects: dict[str, int], overlap: int) -> Desk:
        tasks = {queue: _open(api, project, overlap) for queue, project in projects.items()}
        for task in (t for listed in tasks.values() for t in listed):
            task["answered"] = _annotators(task)
        return cls(tasks)

    def escalate(self, escalated: set[str]) -> None:
        """Tasks escalated since: at the head of their queue's tab by harm, as in Label
        Studio (`labeling.escalate`)."""
        for task in (t for listed in self.tasks.values() for t in listed):
            if str(task["id"]) in escalated:
                task["data"]["priority"] = max(float(task["data"].get("priority") or 0), ESCALATED)


def work_shift(
    policy: Policy,
    api: LabelStudioAPI,
    desk: Desk,
    roster: Roster,
    reviewers: list[Reviewer],
    truth: pd.DataFrame,
    start: datetime,
    end: datetime,
    rng: np.random.Generator,
    pace: float = 1.0,
    borderline_drop: float = 0.15,
) -> int:
    """The rostered reviewers on shift between `start` and `end` work their queues: each takes
    tasks as Label Studio's "By harm" tab shows them (highest priority first), going from
    queue to queue as the forecast expects them to (`labeling.forecast`): a task's priority
    over the reviewers rostered on its queue, so a specialist's hours go where few others can
    stand in. Never one they decided or one with its overlap already, up to what they decide
    in the hours they are on shift at `pace` times the roster's planned pace (a Poisson
    count). Returns the annotations made."""
    by_id = {r.reviewer_id: r for r in reviewers}
    budgets = {}
    for member in roster.reviewers:
        hours = member.hours(start, end, roster.zone)
        if hours <= 0:
            continue
        if member.id not in by_id:
            raise FlywheelError(f"roster: {member.id} is not one of the simulated reviewers")
        budgets[member.id] = int(rng.poisson(pace * member.decisions_per_hour * hours))
    working = [m for m in roster.reviewers if budgets.get(m.id)]
    if not working:
        return 0
    overlap = policy.labeling.overlap
    users = ensure_users(api, [by_id[m.id] for m in working])
    capable = {q: max(len(roster.working(q)), 1) for q in desk.tasks}
    truth = truth.drop_duplicates("item_id", keep="last").set_index("item_id")
    jobs: list[tuple[int, Reviewer, str]] = []
    for k in rng.permutation(len(working)):
        member = working[k]
        user = users[member.id]
        mine = sorted(
            ((q, t) for q in member.queues for t in desk.tasks.get(q, [])),
            key=lambda qt: (-float(qt[1]["data"].get("priority") or 0.0) / capable[qt[0]],
                            qt[1]["id"]),
        )  # fmt: skip
        taken = 0
        for _, task in mine:
            if taken >= budgets[member.id]:
                break
            item = task["data"].get("item_id")
            answered = task["answered"]
            if item not in truth.index or user in answered or len(answered) >= overlap:
                continue
            answered.add(user)
            jobs.append((task["id"], by_id[member.id], item))
            taken += 1
    for queue, listed in desk.tasks.items():
        desk.tasks[queue] = [t for t in listed if len(t["answered"]) < overlap]
    return _answer(policy, api, users, jobs, truth, rng, borderline_drop)


def _open(api: LabelStudioAPI, project: int, overlap: int) -> list[dict]:
    """A project's tasks still short of their overlap, with their data and annotations."""
    waiting = [t["id"] for t in api.iter_tasks(project, fewer_annotations_than(overlap))]
    return api.export_tasks(project, waiting) if waiting else []


def _annotators(task: dict) -> set[int]:
    return {annotator(a) for a in task.get("annotations") or [] if not a.get("was_cancelled")}


def _answer(
    policy: Policy,
    api: LabelStudioAPI,
    users: dict[str, int],
    jobs: list[tuple[int, Reviewer, str]],
    truth: pd.DataFrame,
    rng: np.random.Generator,
    borderline_drop: float,
) -> int:
    """Each (task, reviewer, item) answered in Label Studio by the simulator's rule."""
    if not jobs:
        return 0
    rows = truth.loc[[item for _, _, item in jobs]]
    says, lead = verdicts(
        [r for _, r, _ in jobs],
        rows["is_violating"].to_numpy(dtype=bool),
        rows["is_borderline"].to_numpy(dtype=bool),
        borderline_drop,
        rng,
    )

    def annotate(k: int) -> None:
        task_id, reviewer, _ = jobs[k]
        label = policy.label_value(bool(says[k]))
        api.call(
            f"annotating task {task_id}",
            lambda: api.sdk.annotations.create(
                id=task_id,
                result=choice_result(policy, label),
                completed_by=users[reviewer.reviewer_id],
                lead_time=float(lead[k]),
            ),
        )

    with ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(annotate, range(len(jobs))))
    return len(jobs)
