"""A receiver for Label Studio's annotation webhooks: an event starts a pull of its policy.

Label Studio posts events synchronously with a one-second timeout and never retries, so the
receiver answers at once and pulls in the background; events that arrive during a pull coalesce
into one more pull. A lost event costs nothing: the periodic pull (polling) stays the source of
truth, and a pull is incremental and idempotent. Events must carry the home's webhook secret
(`label bootstrap` registers it as a header of the webhook): anyone else gets 401.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from collections.abc import Callable

from fastapi import FastAPI, Header, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from flywheel.errors import FlywheelError
from flywheel.files import generated_once
from flywheel.settings import Settings

log = logging.getLogger("flywheel.labeling")
SECRET_HEADER = "X-Flywheel-Webhook-Secret"


def webhook_secret(settings: Settings) -> str:
    """The secret webhooks carry: from the settings, else generated once for this home."""
    if settings.webhook_secret:
        return settings.webhook_secret
    stored = generated_once(
        settings.root / "labeling" / "webhook-secret.json",
        lambda: {"secret": secrets.token_urlsafe(24)},
    )
    return stored["secret"]


class Puller:
    """Runs one pull at a time for a policy; requests during a pull make exactly one more."""

    def __init__(self, pull: Callable[[], object]) -> None:
        self._pull = pull
        self._lock = threading.Lock()
        self._pending = False
        self._running = False
        self.pulls = 0
        self.last_error: str | None = None
        self.failures = 0

    def request(self) -> None:
        with self._lock:
            self._pending = True
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                self._pending = False
            self._pull_once()

    def _pull_once(self) -> None:
        """Any failure is kept for `/healthz` and the next event pulls again: a thread that
        died with `busy` set would take no event ever after."""
        try:
            self._pull()
            self.last_error = None
        except FlywheelError as exc:
            self._failed(str(exc))
        except (Exception, SystemExit) as exc:  # a bug, or a CLI helper that exits
            log.exception("a webhook-triggered pull failed")
            self._failed(f"{type(exc).__name__}: {exc}")
        self.pulls += 1

    def _failed(self, error: str) -> None:
        self.last_error = error
        self.failures += 1

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running


def create_app(pullers: dict[str, Puller], secret: str) -> FastAPI:
    """The receiver: `POST /webhooks/labelstudio/<policy>`, and its status for operators."""
    app = FastAPI(title="Flywheel: Label Studio webhook receiver")
    expected = secret.encode()

    @app.post("/webhooks/labelstudio/{policy}", status_code=202)
    def event(policy: str, given: str | None = Header(default=None, alias=SECRET_HEADER)) -> dict:
        if not hmac.compare_digest((given or "").encode("utf-8", "replace"), expected):
            raise HTTPException(401, f"a webhook must carry the {SECRET_HEADER} header")
        if policy not in pullers:
            raise HTTPException(404, f"unknown policy {policy!r}")
        pullers[policy].request()
        return {"policy": policy, "pull": "requested"}

    registry = CollectorRegistry()
    pulls = Gauge(
        "flywheel_webhook_pulls",
        "Pulls that events started, by policy.",
        ["policy"],
        registry=registry,
    )
    failures = Gauge(
        "flywheel_webhook_pull_failures",
        "Event-started pulls that failed (the receiver stays ready; /healthz has the last error).",
        ["policy"],
        registry=registry,
    )
    busy = Gauge(
        "flywheel_webhook_pull_busy", "1 while a pull runs.", ["policy"], registry=registry
    )

    @app.get("/metrics")
    def metrics() -> Response:
        for name, p in pullers.items():
            pulls.labels(name).set(p.pulls)
            failures.labels(name).set(p.failures)
            busy.labels(name).set(p.busy)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def health() -> dict:
        return {
            name: {
                "pulls": p.pulls,
                "failures": p.failures,
                "busy": p.busy,
                "last_error": p.last_error,
            }
            for name, p in pullers.items()
        }

    return app
