"""Simulated reviewers working in Label Studio, so the loop runs unattended in demos and tests.

Each simulated reviewer is a real Label Studio user; they answer open tasks through the API with
the simulator's accuracies (`simulation.world.verdicts`) against the world's ground truth, up to
the project's overlap, never twice on one task. Nothing else in Flywheel knows they are simulated.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from flywheel.policy import Policy
from labeling.client import LabelStudioAPI, fewer_annotations_than
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
    jobs: list[tuple[int, Reviewer]] = []
    items: list[str] = []
    waiting = [t["id"] for t in api.iter_tasks(project, fewer_annotations_than(overlap))]
    for task in api.export_tasks(project, waiting):
        item = task["data"].get("item_id")
        if item not in truth.index:
            continue
        done = {annotator(a) for a in task.get("annotations") or [] if not a.get("was_cancelled")}
        free = [u for u in by_user if u not in done]
        for user in rng.permutation(free)[: max(overlap - len(done), 0)]:
            jobs.append((task["id"], by_user[int(user)]))
            items.append(item)
        if limit is not None and len(jobs) >= limit:
            break
    if not jobs:
        return 0
    rows = truth.loc[items]
    says, lead = verdicts(
        [r for _, r in jobs],
        rows["is_violating"].to_numpy(dtype=bool),
        rows["is_borderline"].to_numpy(dtype=bool),
        borderline_drop,
        rng,
    )

    def annotate(k: int) -> None:
        task_id, reviewer = jobs[k]
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
