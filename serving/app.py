"""The scoring API (docs/architecture.md, "The scoring API").

Routes read and check their JSON themselves rather than through FastAPI's model binding: the
checks are the policy's (which fields, which types), their errors must name the item and field,
and on the hot path every tenth of a millisecond counts. What they take and answer is described
in `/openapi.json` and `/docs` from the served policies (serving/openapi.py).

`create_app` returns a `ScoringApp`: it answers the two scoring routes itself, straight from the
ASGI messages, and hands everything else (admin, health, metrics, docs) to FastAPI. FastAPI's
middleware, routing and request objects cost about 75 µs a request on this machine, two thirds
of what a bare FastAPI endpoint costs in all (README, "Scoring"); the scoring routes answer
exactly as their FastAPI twins, which stay for `/docs` and for mounting the FastAPI app alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flywheel.appeals import NotAutoActioned, UnknownItem, receive
from flywheel.errors import FlywheelError
from flywheel.policy import Policy, list_policies, load_policy
from flywheel.predictions import unfiled_segments
from flywheel.records import ItemError, ItemValidator
from flywheel.runtime import COMPILED
from flywheel.settings import Settings, get_settings
from serving.batching import Batcher
from serving.metrics import Metrics
from serving.models import ModelStore, RefreshReport
from serving.openapi import MAX_ITEM_ID, scoring_openapi
from serving.predlog import PredictionLog

log = logging.getLogger("flywheel.serving")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _json(payload: object | bytes, status: int = 200) -> Response:
    """A JSON response, of a payload or of a body already encoded."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Response(body, status_code=status, media_type="application/json")


class Service:
    """Everything the routes share: settings, policies, models, the batcher, metrics."""

    def __init__(self, settings: Settings, policies: list[Policy]) -> None:
        self.settings = settings
        self.policies = {p.name: p for p in policies}
        self.metrics = Metrics()
        self.store = ModelStore(settings, policies)
        self.log = PredictionLog(settings)
        self.batcher = Batcher(self.store, self.log, self.metrics)
        self.validators: dict[tuple[str, ...], ItemValidator] = {}
        self.versions_shown: dict[tuple[str, str], int | None] = {}

    def check_key(self, header: str, admin: bool = False) -> None:
        """`header` is the request's Authorization value ('' when absent), as ASGI servers
        decode it (Latin-1). Keys are compared as bytes, so any byte a client sends is a wrong
        key (401), never an error."""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401, "unauthorized", "send your API key as `Authorization: Bearer <key>`"
            )
        sent = _as_sent(key)
        admin_key = self.settings.admin_key
        is_admin = bool(admin_key) and hmac.compare_digest(sent, admin_key.encode())
        if admin:
            if not admin_key:
                raise ApiError(
                    403, "forbidden", "admin routes are disabled: set FLYWHEEL_ADMIN_KEY"
                )
            if not is_admin:
                raise ApiError(403, "forbidden", "this route needs the admin key")
            return
        if not is_admin and not any(
            hmac.compare_digest(sent, k.encode()) for k in self.settings.api_keys
        ):
            raise ApiError(401, "unauthorized", "unknown API key")

    def check_length(self, length: int | str | None) -> None:
        """A declared or received body size over the limit: refuse it before reading more."""
        limit = self.settings.max_body_bytes
        if isinstance(length, str):
            length = int(length) if length.isdigit() else None
        if length is not None and length > limit:
            raise ApiError(
                413, "too_large", f"request body over {limit} bytes (FLYWHEEL_MAX_BODY_BYTES)"
            )

    def payload(self, body: bytes) -> dict:
        self.check_length(len(body))
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ApiError(422, "invalid_request", "body must be a JSON object", "body")
        return payload

    def requested(self, payload: dict) -> list[str]:
        names = payload.get("policies")
        if names is None:
            names = list(self.policies)
        elif not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
            raise ApiError(
                422,
                "invalid_request",
                "policies: expected a non-empty list of policy names",
                "policies",
            )
        unknown = [n for n in names if n not in self.policies]
        if unknown:
            served = ", ".join(sorted(self.policies))
            raise ApiError(
                404,
                "unknown_policy",
                f"unknown policy {unknown[0]!r} (served: {served})",
                "policies",
            )
        return list(dict.fromkeys(names))

    def appeal_request(self, body: bytes) -> tuple[Policy, str, str]:
        """An appeal's policy, item id and reason, each checked."""
        payload = self.payload(body)
        name = payload.get("policy")
        if not isinstance(name, str) or not name:
            raise ApiError(422, "invalid_request", "policy: expected a policy name", "policy")
        if name not in self.policies:
            served = ", ".join(sorted(self.policies))
            raise ApiError(
                404, "unknown_policy", f"unknown policy {name!r} (served: {served})", "policy"
            )
        item_id = payload.get("item_id")
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if not isinstance(item_id, str) or not item_id.strip() or len(item_id) > MAX_ITEM_ID:
            raise ApiError(
                422, "invalid_request",
                f"item_id: expected the appealed item's id (1 to {MAX_ITEM_ID} characters)",
                "item_id",
            )  # fmt: skip
        reason = payload.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ApiError(
                422,
                "invalid_request",
                "reason: say why the decision is wrong (not empty)",
                "reason",
            )
        return self.policies[name], item_id, reason

    def validator(self, names: list[str]) -> ItemValidator:
        """The item check for these policies, built once per combination asked for."""
        validate = self.validators.get(tuple(names))
        if validate is None:
            validate = self.validators[tuple(names)] = ItemValidator(
                [self.policies[n] for n in names], self.settings.max_text_chars
            )
        return validate

    async def score(self, route: str, batch: bool, body: bytes) -> tuple[int, bytes]:
        """Answer a scoring request whose key was checked: its status and JSON body (errors
        included). Callers check the key before reading the body, so an anonymous client
        cannot make the server read megabytes."""
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        try:
            payload = self.payload(body)
            names = self.requested(payload)
            rows = self._rows(payload, self.validator(names), batch)
            try:
                results = await self.batcher.submit(request_id, rows, names)
            except Exception as exc:  # the prediction log failed: no answer we could not keep
                raise ApiError(
                    503, "unavailable", "the prediction log could not be written; retry"
                ) from exc
        except ApiError as exc:
            return exc.status, self.error(route, request_id, exc, started)
        if batch:
            answer = {
                "request_id": request_id,
                "results": [
                    {"item_id": row["item_id"], "results": r}
                    for row, r in zip(rows, results, strict=True)
                ],
            }
        else:
            answer = {
                "request_id": request_id,
                "item_id": rows[0]["item_id"],
                "results": results[0],
            }
        self.metrics.answered(route, "200").inc()
        self.metrics.timed(route, "200").observe(time.perf_counter() - started)
        return 200, orjson.dumps(answer)

    def _rows(self, payload: dict, validate: ItemValidator, batch: bool) -> list[dict]:
        try:
            if not batch:
                return [validate(payload.get("item"), "item")]
            items = payload.get("items")
            if not isinstance(items, list) or not items:
                raise ApiError(422, "invalid_request", "items: expected a non-empty list", "items")
            limit = self.settings.max_batch_items
            if len(items) > limit:
                raise ApiError(
                    413,
                    "too_large",
                    f"batch of {len(items)} items; the limit is {limit} (FLYWHEEL_MAX_BATCH_ITEMS)",
                    "items",
                )
            return validate.many(items)
        except ItemError as exc:
            raise ApiError(422, "invalid_item", str(exc), exc.field) from exc

    def error(
        self, route: str, request_id: str, exc: ApiError, started: float | None = None
    ) -> bytes:
        """The JSON body of a refused request, counted under its status (and timed from
        `started`, when the caller knows when the request began)."""
        error = {"code": exc.code, "message": exc.message}
        if exc.field:
            error["field"] = exc.field
        status = str(exc.status)
        self.metrics.answered(route, status).inc()
        if started is not None:
            self.metrics.timed(route, status).observe(time.perf_counter() - started)
        return orjson.dumps({"request_id": request_id, "error": error})

    async def refresh(self) -> RefreshReport:
        report = await asyncio.get_running_loop().run_in_executor(None, self.store.refresh)
        if report.changed:
            # Models and libraries are millions of long-lived objects; leaving them to the cyclic
            # collector means full collections that stall every request for tens of ms. Freeze
            # what is alive now so that collections only look at what requests allocate.
            gc.collect()
            gc.freeze()
        for name, slot in self.store.slots.items():
            outcome = (
                "failed"
                if name in report.errors
                else "changed"
                if name in report.changed
                else "unchanged"
            )
            self.metrics.reloads.labels(name, outcome).inc()
            self.metrics.serving_version.labels(name).set(
                slot.champion.version if slot.champion else 0
            )
            for alias, model in (("champion", slot.champion), ("challenger", slot.challenger)):
                self._version_info(name, alias, model.version if model else None)
                if model is not None:
                    self.metrics.compiled.labels(name, alias).set(model.path == COMPILED)
            if name in report.changed:
                log.warning("policy %s now serves %s", name, report.changed[name])
        return report

    def _version_info(self, policy: str, alias: str, version: int | None) -> None:
        """One `flywheel_model_info` series per policy and alias, for the version serving."""
        shown = self.versions_shown.get((policy, alias))
        if shown == version:
            return
        if shown is not None:
            self.metrics.model_info.remove(policy, alias, str(shown))
        if version is not None:
            self.metrics.model_info.labels(policy, alias, str(version)).set(1)
        self.versions_shown[(policy, alias)] = version

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            self.batcher.upkeep()  # logs its own failures
            try:
                await self.refresh()
            except Exception:  # never let the watcher die
                log.exception("polling the registry failed")


def served_policies(settings: Settings) -> list[Policy]:
    names = settings.serve_policies or list_policies(settings)
    if not names:
        raise FlywheelError(f"no policies to serve in {settings.policies_dir}")
    return [load_policy(name, settings) for name in names]


def create_app(settings: Settings | None = None) -> ScoringApp:
    settings = settings or get_settings()
    service = Service(settings, served_policies(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.refresh()
        poller = asyncio.create_task(service.poll())
        try:
            yield
        finally:
            poller.cancel()
            service.log.close()

    app = FastAPI(
        title="Flywheel scoring API",
        description="Scores items against risk policies with the champion models of the MLflow registry.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        body = service.error(request.scope.get("path", ""), request_id, exc)
        return _json(body, exc.status)

    async def _score(request: Request, route: str, batch: bool) -> Response:
        service.check_key(request.headers.get("authorization", ""))
        service.check_length(request.headers.get("content-length"))
        status, body = await service.score(route, batch, await request.body())
        return _json(body, status)

    @app.post("/v1/score")
    async def score(request: Request) -> Response:
        """Score one item against one, several or all served policies."""
        return await _score(request, "/v1/score", batch=False)

    @app.post("/v1/score/batch")
    async def score_batch(request: Request) -> Response:
        """Score up to FLYWHEEL_MAX_BATCH_ITEMS items in one call."""
        return await _score(request, "/v1/score/batch", batch=True)

    @app.post("/v1/appeals")
    async def appeal(request: Request) -> Response:
        """Appeal an item the API auto-actioned (once per item)."""
        request.state.request_id = request_id = uuid.uuid4().hex
        service.check_key(request.headers.get("authorization", ""))
        service.check_length(request.headers.get("content-length"))
        policy, item_id, reason = service.appeal_request(await request.body())
        try:
            received = await run_in_threadpool(receive, service.settings, policy, item_id, reason)
        except UnknownItem as exc:
            raise ApiError(404, "unknown_item", str(exc), "item_id") from exc
        except NotAutoActioned as exc:
            raise ApiError(409, "not_auto_actioned", str(exc), "item_id") from exc
        body = {"request_id": request_id, "created": received.created, "appeal": received.appeal}
        status = 201 if received.created else 200
        service.metrics.answered("/v1/appeals", str(status)).inc()
        return _json(body, status)

    @app.post("/v1/admin/reload")
    async def reload(request: Request) -> Response:
        """Read the registry's aliases now and swap in any changed model (admin key)."""
        request.state.request_id = request_id = uuid.uuid4().hex
        service.check_key(request.headers.get("authorization", ""), admin=True)
        report = await service.refresh()
        return _json(
            {
                "request_id": request_id,
                "changed": report.changed,
                "errors": report.errors,
                "policies": service.store.status(),
            }
        )

    @app.get("/healthz")
    async def healthz() -> Response:
        """The process answers."""
        return _json({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        """Every policy has a model (503 and the list when some answer on fallback)."""
        status = service.store.status()
        fallback = sorted(name for name, s in status.items() if s["fallback"])
        log = {"unfiled_segments": unfiled_segments(service.settings)}
        return _json(
            {
                "ready": not fallback,
                "fallback": fallback,
                "policies": status,
                "prediction_log": log,
            },
            503 if fallback else 200,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics."""
        service.metrics.log_lag.set(service.log.lag_seconds())
        service.metrics.log_unfiled.set(len(unfiled_segments(service.settings)))
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict:
        """The document of `/openapi.json` and `/docs`, made once: FastAPI's, with the scoring
        routes described from the served policies (serving/openapi.py)."""
        if app.openapi_schema is None:
            base = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            policies = list(service.policies.values())
            app.openapi_schema = scoring_openapi(base, policies, service.settings)
        return app.openapi_schema

    app.openapi = openapi
    return ScoringApp(app, service)


def _as_sent(key: str) -> bytes:
    """A header value's bytes as they came over the wire (ASGI decodes headers as Latin-1)."""
    try:
        return key.encode("latin-1")
    except UnicodeEncodeError:  # not from a server: a caller's own string
        return key.encode()


class _Disconnected(Exception):
    pass


class ScoringApp:
    """The ASGI application: scoring requests answered directly, the rest by FastAPI."""

    ROUTES: ClassVar = {"/v1/score": False, "/v1/score/batch": True}  # path -> is a batch

    def __init__(self, api: FastAPI, service: Service) -> None:
        self.api = api
        self.service = service

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        route = scope.get("path", "")
        batch = self.ROUTES.get(route)
        if scope["type"] != "http" or scope["method"] != "POST" or batch is None:
            await self.api(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        try:
            self.service.check_key(headers.get(b"authorization", b"").decode("latin-1"))
            self.service.check_length(headers.get(b"content-length", b"").decode("latin-1"))
            with self.service.batcher.receiving_body():
                body = await self._body(receive)
            status, answer = await self.service.score(route, batch, body)
        except ApiError as exc:
            status, answer = exc.status, self.service.error(route, uuid.uuid4().hex, exc, started)
        except _Disconnected:
            return
        except Exception:  # what FastAPI's error middleware would do: log it, answer 500
            log.exception("scoring request failed")
            error = ApiError(500, "internal", "the server failed to answer; see its log")
            status, answer = 500, self.service.error(route, uuid.uuid4().hex, error, started)
        length = (b"content-length", str(len(answer)).encode())
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), length],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _body(self, receive: Callable) -> bytes:
        """The request body, refused as soon as it grows past the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            self.service.check_length(size)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
