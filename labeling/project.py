"""One Label Studio project per policy (per queue, with `queues:`), made from the policy and
kept in step with it.

The labeling interface is derived from the policy: its text fields, its signals as one line, the
model's assistance (empty on blind-audit tasks), a single required choice between the policy's two
labels and a notes box. Bootstrap finds the project by its id in the lake's labeling state, or by
title, and updates it in place, so running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from flywheel.errors import FlywheelError
from flywheel.lake import Lake
from flywheel.policy import Policy, Queue
from flywheel.roster import Roster
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI
from labeling.webhook import SECRET_HEADER, webhook_secret

CHOICE = "label"  # the control whose value is the reviewer's decision
NOTES = "notes"
WEBHOOK_ACTIONS = [
    "ANNOTATION_CREATED",
    "ANNOTATIONS_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATIONS_DELETED",
]


@dataclass(frozen=True)
class Project:
    id: int
    title: str
    created: bool


def anchor(policy: Policy) -> str:
    """The object the decision is about: the first text field, or the signals line."""
    return policy.fields.text[0] if policy.fields.text else "signals"


def choice_result(policy: Policy, label: str) -> list[dict]:
    """An annotation or prediction result that chooses `label`."""
    return [
        {
            "from_name": CHOICE,
            "to_name": anchor(policy),
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def annotator(annotation: dict) -> int | None:
    """The user who completed an annotation (an id, or a nested user in some answers)."""
    user = annotation.get("completed_by")
    return user.get("id") if isinstance(user, dict) else user


def label_config(policy: Policy) -> str:
    """The labeling interface for a policy, as Label Studio's XML."""
    texts = [
        f'  <Header value="{escape(name)}" size="5"/>\n  <Text name="{name}" value="${name}"/>'
        for name in policy.fields.text
    ]
    target = anchor(policy)
    choices = "\n".join(
        f'    <Choice value="{escape(v)}"/>'
        for v in (policy.labels.positive, policy.labels.negative)
    )
    return "\n".join(
        [
            "<View>",
            *texts,
            '  <Header value="Signals" size="5"/>\n  <Text name="signals" value="$signals"/>',
            '  <Text name="assist" value="$assist"/>',
            f'  <Choices name="{CHOICE}" toName="{target}" choice="single" required="true" '
            'showInline="true">',
            choices,
            "  </Choices>",
            f'  <TextArea name="{NOTES}" toName="{target}" placeholder="Notes (optional)" '
            'maxSubmissions="1" editable="true"/>',
            "</View>",
        ]
    )


def instructions(policy: Policy) -> str:
    base = policy.labeling.instructions or (
        f"Decide whether the item violates the {policy.name} policy"
        + (f" ({policy.description})" if policy.description else "")
        + f". Choose <b>{escape(policy.labels.positive)}</b> if it does, "
        f"<b>{escape(policy.labels.negative)}</b> if it does not. Some tasks show the model's "
        "score and the signals behind it: judge the item, not the score. Skip only what you "
        "cannot judge; write what was hard in the notes."
    )
    return f"<p>{base}</p>"


def _fields(policy: Policy, title: str, queue: Queue | None) -> dict:
    """A project's settings: the policy's interface, and a queue's name and SLA."""
    note = (
        f"<p>Queue <b>{escape(queue.name)}</b>: decide each task within {queue.sla_hours:g} "
        "hours. Work from the “By harm” tab: it puts the tasks most likely to do harm first.</p>"
        if queue is not None
        else ""
    )
    return {
        "title": title,
        "description": policy.description or policy.name,
        "label_config": label_config(policy),
        "expert_instruction": instructions(policy) + note,
        "show_instruction": True,
        "show_skip_button": True,
        "maximum_annotations": policy.labeling.overlap,
    }


def _ensure(api: LabelStudioAPI, known: int | None, fields: dict) -> Project:
    """Create the project, or update the one known by id or found by title."""
    existing = _find(api, known, fields["title"])
    if existing is None:
        made = api.call(
            f"creating project {fields['title']!r}", lambda: api.sdk.projects.create(**fields)
        )
        return Project(made.id, fields["title"], True)
    api.call(f"updating project {existing}", lambda: api.sdk.projects.update(id=existing, **fields))
    return Project(existing, fields["title"], False)


def bootstrap(policy: Policy, lake: Lake, api: LabelStudioAPI, settings: Settings) -> Project:
    """Create or update the policy's project (and its webhook when one is configured); with
    `queues:`, one project per queue (`bootstrap_queues`) and this returns the first."""
    if policy.queues is not None:
        return next(iter(bootstrap_queues(policy, lake, api, settings).values()))
    state = lake.labeling_state(policy.name)
    project = _ensure(api, state.get("project_id"), _fields(policy, policy.project_title, None))
    if state.get("project_id") != project.id:
        lake.write_labeling_state(policy.name, {**state, "project_id": project.id})
    _hook(api, project.id, policy, settings)
    return project


def queue_title(policy: Policy, queue: str) -> str:
    return f"{policy.project_title} · {queue}"


def bootstrap_queues(
    policy: Policy, lake: Lake, api: LabelStudioAPI, settings: Settings
) -> dict[str, Project]:
    """One project per queue, each with a "By harm" tab that orders its tasks by the harm the
    push ranked them by (`data.priority`): Label Studio's label stream follows a tab's order."""
    assert policy.queues is not None
    state = lake.labeling_state(policy.name)
    known = state.get("projects", {})
    made = {}
    for queue in policy.queues.define:
        title = queue_title(policy, queue.name)
        made[queue.name] = _ensure(api, known.get(queue.name), _fields(policy, title, queue))
        _harm_tab(api, made[queue.name].id)
        _hook(api, made[queue.name].id, policy, settings)
    ids = {name: p.id for name, p in made.items()}
    if known != ids:
        lake.write_labeling_state(policy.name, {**state, "projects": ids})
    return made


HARM_TAB = "By harm"


def _harm_tab(api: LabelStudioAPI, project: int) -> None:
    views = api.call("listing tabs", lambda: api.sdk.views.list(project=project))
    if any((v.data or {}).get("title") == HARM_TAB for v in views):
        return
    api.call(
        "creating the tab by harm",
        lambda: api.sdk.views.create(
            project=project, data={"title": HARM_TAB, "ordering": ["-tasks:data.priority"]}
        ),
    )


def _hook(api: LabelStudioAPI, project: int, policy: Policy, settings: Settings) -> None:
    if settings.webhook_url:
        _ensure_webhook(api, project, webhook_address(settings, policy), webhook_secret(settings))


def _find(api: LabelStudioAPI, project_id: int | None, title: str) -> int | None:
    projects = api.call("listing projects", lambda: list(api.sdk.projects.list(page_size=1000)))
    ids = {p.id for p in projects}
    if project_id in ids:
        return project_id
    matches = sorted(p.id for p in projects if p.title == title)
    return matches[0] if matches else None


def webhook_address(settings: Settings, policy: Policy) -> str:
    """Where Label Studio posts this policy's events: the policy is in the path, since a
    payload-free event does not name its project."""
    return f"{settings.webhook_url.rstrip('/')}/{policy.name}"


def _ensure_webhook(api: LabelStudioAPI, project: int, url: str, secret: str) -> None:
    """One webhook to `url` carrying the secret; an older one without it gets it."""
    headers = {SECRET_HEADER: secret}
    hooks = api.call("listing webhooks", lambda: api.sdk.webhooks.list(project=str(project)))
    for hook in (h for h in hooks if h.url == url and h.project == project):
        if (hook.headers or {}) != headers:
            api.call(
                "adding the secret to the webhook",
                lambda hook=hook: api.sdk.webhooks.update(id=hook.id, url=url, headers=headers),
            )
        return
    api.call(
        "creating the webhook",
        lambda: api.sdk.webhooks.create(
            url=url,
            project=project,
            send_payload=False,
            actions=WEBHOOK_ACTIONS,
            headers=headers,
        ),
    )


def project_id(policy: Policy, lake: Lake, api: LabelStudioAPI, settings: Settings) -> int:
    """The policy's project (the first queue's, with queues), bootstrapped on first use."""
    return next(iter(projects(policy, lake, api, settings).values()))


def live_projects(
    policy: Policy, lake: Lake, api: LabelStudioAPI, settings: Settings
) -> dict[str, int]:
    """`projects`, each checked to still exist in Label Studio: tasks pushed to a project
    deleted by hand can no longer be decided, and pushing or pulling on must not hide it."""
    ids = projects(policy, lake, api, settings)
    listed = api.call("listing projects", lambda: list(api.sdk.projects.list(page_size=1000)))
    there = {p.id for p in listed}
    for queue, project in ids.items():
        if project not in there:
            name = queue_title(policy, queue) if queue else policy.project_title
            raise FlywheelError(
                f"Label Studio project {project} ({name!r}) is gone, deleted by hand? Its open "
                f"tasks cannot be decided. `flywheel label bootstrap --policy {policy.name}` "
                "makes a new one; nothing was pushed or pulled"
            )
    return ids


def check_users(roster: Roster, api: LabelStudioAPI) -> None:
    """Every rostered reviewer is a Label Studio user: a queue staffed on paper by someone who
    cannot log in would be planned for and never worked."""
    users = api.call("listing users", lambda: api.sdk.users.list())
    known = {(u.email or "").lower() for u in users} | {(u.username or "").lower() for u in users}
    for i, reviewer in enumerate(roster.reviewers):
        if reviewer.user.lower() not in known:
            raise FlywheelError(
                f"roster: reviewers[{i}] ({reviewer.id}): Label Studio has no user "
                f"{reviewer.user!r}; add them there (or fix the roster). Nothing was pushed"
            )


def projects(policy: Policy, lake: Lake, api: LabelStudioAPI, settings: Settings) -> dict[str, int]:
    """The policy's projects by queue ("" for the one project of a policy without queues),
    bootstrapped on first use and whenever a queue is new."""
    state = lake.labeling_state(policy.name)
    if policy.queues is None:
        known = state.get("project_id")
        return {"": known if known is not None else bootstrap(policy, lake, api, settings).id}
    known = state.get("projects", {})
    if set(known) >= {q.name for q in policy.queues.define}:
        return {q.name: known[q.name] for q in policy.queues.define}
    return {n: p.id for n, p in bootstrap_queues(policy, lake, api, settings).items()}
