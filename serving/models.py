"""Which model serves each policy, and how a new one replaces it without a failed request.

The store holds, per policy, the champion and (when it differs) the challenger, each a
`flywheel.runtime.Model` (its thresholds, and its compiled or reference scoring path). A refresh reads the aliases from the registry; a version that
changed is loaded beside the old one, and only then is the whole table replaced in one
assignment, so a request in flight keeps the table it started with. Anything that goes wrong while
refreshing (registry down, a model that does not load) leaves the last good model in place and is
reported; a policy that never had a model answers `review` on fallback.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace

from flywheel.errors import FlywheelError, redact
from flywheel.policy import Policy
from flywheel.registry import CHALLENGER, CHAMPION, ModelVersionRef, connect, get_version
from flywheel.runtime import Model, load_model
from flywheel.settings import Settings

log = logging.getLogger("flywheel.serving")


@dataclass(frozen=True)
class Slot:
    """What serves one policy right now."""

    policy: Policy
    champion: Model | None = None
    challenger: Model | None = None  # only when it differs from the champion
    error: str | None = None  # the last refresh's problem, if any

    @property
    def fallback(self) -> bool:
        return self.champion is None


@dataclass
class RefreshReport:
    changed: dict[str, str] = field(default_factory=dict)  # policy -> what moved
    errors: dict[str, str] = field(default_factory=dict)  # policy -> why it kept the old one


class ModelStore:
    def __init__(self, settings: Settings, policies: list[Policy]) -> None:
        self.settings = settings
        self.slots: dict[str, Slot] = {p.name: Slot(p) for p in policies}
        self._refresh_lock = threading.Lock()

    def refresh(self) -> RefreshReport:
        """Bring every policy to the registry's current aliases (blocking; run off the event loop)."""
        report = RefreshReport()
        with self._refresh_lock:
            try:
                client = connect(self.settings)
            except FlywheelError as exc:
                for name in self.slots:
                    report.errors[name] = str(exc)
                self._mark_errors(report.errors)
                return report
            new_slots = dict(self.slots)
            for name, slot in self.slots.items():
                try:
                    new_slots[name], moved = self._refresh_slot(client, slot)
                    if moved:
                        report.changed[name] = moved
                except Exception as exc:  # registry or model trouble: keep serving the old one
                    report.errors[name] = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])
                    new_slots[name] = replace(slot, error=report.errors[name])
                    log.warning(
                        "refresh of %s failed, keeping version %s: %s",
                        name,
                        slot.champion.version if slot.champion else "none",
                        report.errors[name],
                    )
            self.slots = new_slots  # one assignment: readers see the old table or the new one
        return report

    def _mark_errors(self, errors: dict[str, str]) -> None:
        self.slots = {
            name: replace(slot, error=errors.get(name)) for name, slot in self.slots.items()
        }

    def _refresh_slot(self, client: object, slot: Slot) -> tuple[Slot, str]:
        policy = slot.policy
        champion_ref = get_version(client, policy.name, CHAMPION)
        challenger_ref = get_version(client, policy.name, CHALLENGER)
        if champion_ref is None:
            # no champion (yet, or the alias was removed): keep whatever serves now
            return replace(slot, error=None if slot.champion else "no champion registered"), ""
        champion = self._load(client, champion_ref, slot.champion, slot.challenger, policy=policy)
        challenger = None
        if challenger_ref is not None and challenger_ref.version != champion_ref.version:
            challenger = self._load(
                client, challenger_ref, slot.challenger, slot.champion, policy=policy
            )
        moved = []
        if slot.champion is None or slot.champion.version != champion.version:
            moved.append(f"champion v{champion.version}")
        old_challenger = slot.challenger.version if slot.challenger else None
        new_challenger = challenger.version if challenger else None
        if old_challenger != new_challenger:
            moved.append(
                f"challenger v{new_challenger}" if new_challenger else "challenger removed"
            )
        return Slot(policy, champion, challenger), ", ".join(moved)

    def _load(
        self, client: object, ref: ModelVersionRef, *have: Model | None, policy: Policy
    ) -> Model:
        for loaded in have:
            if loaded is not None and loaded.version == ref.version:
                return loaded
        model = load_model(client, ref, policy, self.settings.allow_pickle_models)
        log.info("loaded %s version %s (%s path)", policy.name, ref.version, model.path)
        return model

    def status(self) -> dict[str, dict]:
        return {
            name: {
                "champion": slot.champion.version if slot.champion else None,
                "challenger": slot.challenger.version if slot.challenger else None,
                "scoring": {
                    alias: model.describe()
                    for alias, model in (
                        ("champion", slot.champion),
                        ("challenger", slot.challenger),
                    )
                    if model is not None
                },
                "fallback": slot.fallback,
                "error": slot.error,
            }
            for name, slot in self.slots.items()
        }
