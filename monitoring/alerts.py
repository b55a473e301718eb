"""Alerts: conditions from a monitoring run, kept open while they hold, resolved when they clear.

An alert is keyed by policy, kind and subject (`spam:reviewer:rev-fox`), so a condition that holds
run after run stays one open alert (its value and last-seen time updated), not a new one each
time. Alerts live in the lake (`monitoring/alerts.json`, written atomically under a lock). When a
webhook URL is configured, opening and resolving are posted as Slack-compatible JSON; a webhook
that fails is retried a few times and recorded on the alert, and never fails the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from flywheel.files import file_lock, write_json_atomic
from flywheel.lake import Lake, utc_now
from flywheel.notify import post_json


@dataclass(frozen=True)
class Condition:
    """Something a run found wrong: what, about what, how far past which threshold."""

    kind: str
    subject: str
    value: float | None
    threshold: float | None
    message: str
    # a subject named by terms (an emerging cluster's): the ones that identify it, so a condition
    # of the same kind that shares `SAME_TERMS` of them with an open alert's is that alert (a
    # cluster's top terms reorder from run to run)
    terms: tuple[str, ...] = ()


SAME_TERMS = 2
TERM_SEPARATOR = ", "


@dataclass
class Alert:
    key: str
    policy: str
    kind: str
    subject: str
    message: str
    value: float | None
    threshold: float | None
    opened_at: str
    last_seen_at: str
    resolved_at: str | None = None
    notify_error: str | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None


@dataclass
class AlertUpdate:
    opened: list[Alert]
    still_open: list[Alert]
    resolved: list[Alert]


class AlertStore:
    """The alerts of every policy in one lake."""

    def __init__(self, lake_dir: Path, webhook_url: str = "", retries: int = 3) -> None:
        self.path = Lake(lake_dir).alerts_file
        self.webhook_url = webhook_url
        self.retries = retries

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with file_lock(self.path.parent / "alerts.lock"):
            yield

    def all(self) -> list[Alert]:
        if not self.path.is_file():
            return []
        return [Alert(**raw) for raw in json.loads(self.path.read_text())["alerts"]]

    def update(self, policy: str, conditions: list[Condition]) -> AlertUpdate:
        """Open new alerts, refresh the ones that still hold, resolve the ones that cleared."""
        now = utc_now().isoformat()
        with self._locked():
            alerts = self.all()
            current = {f"{policy}:{c.kind}:{c.subject}": c for c in conditions}
            update = AlertUpdate([], [], [])
            for alert in alerts:
                if alert.policy != policy or not alert.open:
                    continue
                condition = current.pop(alert.key, None) or _same_terms(alert, current)
                if condition is None:
                    alert.resolved_at = now
                    update.resolved.append(alert)
                else:
                    alert.value, alert.message, alert.last_seen_at = (
                        condition.value,
                        condition.message,
                        now,
                    )
                    update.still_open.append(alert)
            for key, c in current.items():
                alert = Alert(
                    key, policy, c.kind, c.subject, c.message, c.value, c.threshold, now, now
                )
                alerts.append(alert)
                update.opened.append(alert)
            write_json_atomic({"alerts": [asdict(a) for a in alerts]}, self.path)
        self._announce(update)
        return update

    def _announce(self, update: AlertUpdate) -> None:
        """Post the opened and resolved alerts, outside the store's lock (a slow webhook must
        not hold up another run's alerts), then record which posts failed."""
        sent = [("opened", a) for a in update.opened] + [("resolved", a) for a in update.resolved]
        for what, alert in sent:
            alert.notify_error = self._notify(what, alert)
        failed = {(a.key, a.opened_at): a.notify_error for _, a in sent if a.notify_error}
        if not failed:
            return
        with self._locked():
            alerts = self.all()
            for alert in alerts:
                alert.notify_error = failed.get((alert.key, alert.opened_at), alert.notify_error)
            write_json_atomic({"alerts": [asdict(a) for a in alerts]}, self.path)

    def _notify(self, what: str, alert: Alert) -> str | None:
        """Post to the webhook; the error (after retries) is returned, never raised."""
        if not self.webhook_url:
            return None
        icon = ":rotating_light:" if what == "opened" else ":white_check_mark:"
        payload = {
            "text": f"{icon} Flywheel alert {what}: [{alert.policy}] {alert.message}",
            "alert": asdict(alert),
        }
        return post_json(self.webhook_url, payload, self.retries)


def _same_terms(alert: Alert, current: dict[str, Condition]) -> Condition | None:
    """The condition (taken out of `current`) that names the open alert's subject by enough of
    the same terms, if any."""
    named = set(alert.subject.split(TERM_SEPARATOR))
    for key, condition in current.items():
        if condition.kind == alert.kind and len(named & set(condition.terms)) >= SAME_TERMS:
            return current.pop(key)
    return None
