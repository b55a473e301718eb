"""The operations console: read-only pages over one home, server-rendered, behind a key.

FastAPI with Jinja2 templates: the pages are HTML made on the server from what the lake holds,
with plotly.js (served from the installed plotly package, so no network is needed) drawing the
charts from JSON specs embedded in the page. The key is checked in constant time; a browser
signs in once with a form and keeps an HttpOnly cookie holding a keyed hash of the key, never
the key; scripts send the key as a bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from console import charts
from console.figures import (
    DECISIONS,
    Home,
    alerts,
    backlog,
    daily_traffic,
    decision_mix,
    model_versions,
    queue_forecast,
    reports,
    reviewer_quality,
    series,
    sla_compliance,
)
from console.metrics import registry
from flywheel import clock
from flywheel.errors import redact
from flywheel.settings import Settings

COOKIE = "flywheel_console"
PUBLIC = ("/login", "/healthz", "/static/")
STATIC = Path(__file__).parent / "static"
PAGES = [
    ("/", "overview"),
    ("/reviewers", "reviewers"),
    ("/queues", "queues"),
    ("/models", "models"),
    ("/alerts", "alerts"),
]


def plotly_script() -> Path:
    """plotly.js as the installed plotly package ships it."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _session(key: str) -> str:
    return hmac.new(key.encode(), b"flywheel console session", hashlib.sha256).hexdigest()


def _authorised(request: Request, key: str) -> bool:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(
        header[7:].strip().encode(), key.encode()
    ):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), _session(key).encode())


def _safe_next(target: str) -> str:
    """Only a path of this console: never another site (`//host`, `https://…`)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


# formatting for the templates ----------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def pct(value: Any, digits: int = 1) -> str:
    return "–" if _missing(value) else f"{100 * float(value):.{digits}f}%"


def num(value: Any, digits: int = 3) -> str:
    return "–" if _missing(value) else f"{float(value):.{digits}f}"


def count(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):,.0f}"


def amount(value: Any) -> str:
    """A value of any size: whole numbers as counts, others to four significant digits."""
    if _missing(value):
        return "–"
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() else f"{value:.4g}"


def hours(value: Any) -> str:
    if _missing(value):
        return "–"
    value = float(value)
    return (
        f"{value * 60:.0f} min"
        if value < 1
        else f"{value:.1f} h"
        if value < 48
        else f"{value / 24:.1f} d"
    )


def interval(figure: Any) -> str:
    """An estimate as people should read it: value, interval, and the items behind it."""
    if figure is None or _missing(getattr(figure, "value", None)):
        return "–"
    bounds = (
        f" [{figure.low:.3f}, {figure.high:.3f}]"
        if not _missing(figure.low) and not _missing(figure.high)
        else ""
    )
    return f"{figure.value:.3f}{bounds}, n = {figure.count}"


def when(value: Any) -> str:
    if value is None or value == "":
        return "–"
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("console", "templates"), autoescape=select_autoescape(default=True)
    )
    env.filters.update(
        pct=pct, num=num, count=count, amount=amount, hours=hours, interval=interval, when=when
    )
    return env


# the application -----------------------------------------------------------------------------


def create_app(settings: Settings, key: str) -> FastAPI:
    """The console of one home; `key` is the one a browser signs in with."""
    if not key:
        raise ValueError("the console needs a key")
    home = Home(settings)
    env = _environment()

    @asynccontextmanager
    async def warm(app: FastAPI) -> AsyncIterator[None]:
        """Pay before the first page what the first page would: MLflow's client takes a second
        to import and connect, and each policy's plotted reports are parsed once."""
        await run_in_threadpool(_warm_registry, settings)
        for name in home.policies():
            await run_in_threadpool(reports, home, name)
        yield

    app = FastAPI(
        title="Flywheel console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=warm
    )

    def page(template: str, title: str, status: int = 200, nav: bool = True, **context: Any):
        if nav and "policies" not in context:
            context["policies"] = list(home.policies())
        html = env.get_template(f"{template}.html").render(
            title=title, pages=PAGES, nav=nav, home=str(settings.root), **context
        )
        return HTMLResponse(html, status_code=status)

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        path = request.url.path
        if path.startswith(PUBLIC) or _authorised(request, key):
            response = await call_next(request)
        elif request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        else:
            response = Response(
                "the console needs its key", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    metrics = registry(home)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Every policy's latest monitoring figures, for Prometheus (with the key as bearer)."""
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/static/plotly.min.js")
    def plotly_js() -> FileResponse:
        return FileResponse(
            plotly_script(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/static/{name}")
    def static(name: str) -> FileResponse:
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()}:
            return Response("not found", status_code=404)
        return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/login", response_class=HTMLResponse)
    def login_form(next: str = "/") -> HTMLResponse:
        return page("login", "Sign in", nav=False, next=_safe_next(next), error="")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = form.get("key", [""])[0].strip()
        target = _safe_next(form.get("next", ["/"])[0])
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
            return page(
                "login",
                "Sign in",
                status=401,
                nav=False,
                next=target,
                error="That is not this console's key.",
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            _session(key),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=30 * 86400,
        )
        return response

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse)
    def overview() -> HTMLResponse:
        policies = home.policies()
        open_alerts = [a for a in alerts(home) if a.open]
        now = pd.Timestamp(clock.now(home.settings))
        rows = []
        for name, policy in policies.items():
            latest = reports(home, name, newest=1)
            traffic = daily_traffic(home, policy) if policy else pd.DataFrame()
            rows.append(
                {
                    "name": name,
                    "policy": policy,
                    "report": latest[-1] if latest else None,
                    "day": decision_mix(traffic, now - pd.Timedelta(days=1)) if policy else None,
                    "week": decision_mix(traffic, now - pd.Timedelta(days=7)) if policy else None,
                    "alerts": [a for a in open_alerts if a.policy == name],
                    "backlog": backlog(home, name, policy),
                }
            )
        return page(
            "overview",
            "Overview",
            here="/",
            rows=rows,
            decisions=DECISIONS,
            policies=list(policies),
        )

    @app.get("/policies/{name}", response_class=HTMLResponse)
    def policy_page(name: str) -> HTMLResponse:
        policies = home.policies()
        if name not in policies:
            return page(
                "missing", "Not found", status=404, what=f"policy {name!r}", policies=list(policies)
            )
        policy = policies[name]
        runs = reports(home, name)
        frame = series(runs)
        traffic = daily_traffic(home, policy) if policy else pd.DataFrame()
        figures = charts.policy_charts(frame, traffic, policy.alert_limits if policy else {})
        latest = runs[-1] if runs else None
        with_clusters = next(
            (r for r in reversed(runs) if r.emerging and r.emerging.clusters), None
        )
        drifted_runs: dict[str, int] = {}
        for r in runs:
            for field, d in (r.drift.fields if r.drift else {}).items():
                drifted_runs[field] = drifted_runs.get(field, 0) + bool(d.drifted)
        return page(
            "policy",
            name,
            here=f"/policies/{name}",
            name=name,
            policy=policy,
            latest=latest,
            runs=len(runs),
            clustered=with_clusters,
            charts=figures,
            drifted_runs=drifted_runs,
            backlog=backlog(home, name, policy),
            alerts=[a for a in alerts(home) if a.policy == name and a.open],
            policies=list(policies),
        )

    @app.get("/policies/{name}/runs/{run_id}/drift", response_class=HTMLResponse)
    def drift_report(name: str, run_id: str) -> Response:
        if name not in home.policies() or not run_id.replace("T", "").replace("Z", "").isdigit():
            return Response("not found", status_code=404)
        path = home.lake.run_dir(name, run_id) / "drift.html"
        if not path.is_file():
            return Response("this run kept no drift report", status_code=404)
        return FileResponse(path, media_type="text/html")

    @app.get("/reviewers", response_class=HTMLResponse)
    def reviewers() -> HTMLResponse:
        policies = home.policies()
        sections = []
        for name, policy in policies.items():
            latest = reports(home, name, newest=1)
            pace = (latest[-1].health.model_extra or {}).get("reviewers", {}) if latest else {}
            sections.append(
                {"name": name, "policy": policy, "qa": reviewer_quality(home, name), "pace": pace}
            )
        return page(
            "reviewers", "Reviewers", here="/reviewers", sections=sections, policies=list(policies)
        )

    @app.get("/queues", response_class=HTMLResponse)
    def queues() -> HTMLResponse:
        policies = home.policies()
        sections, specs = [], []
        for n, p in policies.items():
            section = {
                "name": n,
                "backlog": backlog(home, n, p),
                "forecast": queue_forecast(home, n),
            }
            section["policy"], section["charts"] = p, []
            for queue, frame in sla_compliance(home, n, p).items():
                sla = p.queues.queue(queue).sla_hours
                spec = charts.rate_chart(
                    frame, "compliance", f"{n} · {queue}: decided within {sla:g} h",
                    limit=p.queues.sla_target, limit_label="target",
                )  # fmt: skip
                spec["layout"]["yaxis"]["title"]["text"] = "share of the day's tasks"
                # a point per day of push: a tick a day, and half a day either side, so that
                # a queue with one day of history is not drawn over a millisecond
                days = pd.to_datetime(frame["computed_at"], utc=True)
                half = pd.Timedelta(hours=12)
                spec["layout"]["xaxis"] |= {
                    "dtick": 86400000,
                    "tickformat": "%b %-d",
                    "range": [(days.min() - half).isoformat(), (days.max() + half).isoformat()],
                }
                specs.append(spec)
                section["charts"].append(len(specs))
            sections.append(section)
        return page(
            "queues",
            "Queues",
            here="/queues",
            sections=sections,
            charts=specs,
            labelstudio=settings.labelstudio_url.rstrip("/"),
            policies=list(policies),
        )

    @app.get("/models", response_class=HTMLResponse)
    def models() -> HTMLResponse:
        policies = home.policies()
        sections = []
        for name in policies:
            try:
                versions, problem = model_versions(home, name), ""
            except Exception as exc:  # the registry down: the page says so, the rest still shows
                versions, problem = [], f"the model registry did not answer: {redact(str(exc))}"
            sections.append(
                {
                    "name": name,
                    "problem": problem,
                    "versions": versions,
                    "chart": charts.thresholds_chart(
                        versions, f"{name}: operating points by version"
                    )
                    if versions
                    else None,
                }
            )
        return page(
            "models",
            "Models",
            here="/models",
            sections=sections,
            mlflow=_mlflow_address(settings),
            policies=list(policies),
        )

    @app.get("/alerts", response_class=HTMLResponse)
    def alert_page(policy: str = "") -> HTMLResponse:
        every = [a for a in alerts(home) if not policy or a.policy == policy]
        return page(
            "alerts",
            "Alerts",
            here="/alerts",
            chosen=policy,
            open=[a for a in every if a.open],
            resolved=[a for a in every if not a.open],
        )

    return app


def _warm_registry(settings: Settings) -> None:
    from flywheel.registry import connect

    with suppress(Exception):  # an unreachable registry shows on the models page, not here
        connect(settings).search_registered_models(max_results=1)


def _mlflow_address(settings: Settings) -> str:
    """Where the registry's web UI is: the tracking server itself, or the one the settings
    name for a database store (`mlflow ui` pointed at it)."""
    if settings.console_mlflow_url:
        return settings.console_mlflow_url.rstrip("/")
    uri = settings.tracking_uri
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else ""
