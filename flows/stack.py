"""The servers a home runs beside its flows: `flywheel stack start` and `flywheel stop`.

The stack is what runs the wheel unattended on one machine: a Prefect server (its database in the
home, or PostgreSQL through `PREFECT_API_DATABASE_CONNECTION_URL`), the `flywheel` work pool,
every deployment of `prefect.yaml` (cycles and monitoring on schedules, ingest on demand), a
process worker that runs them with this home's settings, and the webhook receiver that turns
Label Studio's annotation events into ingest runs. Each is a background server of the home
(`flywheel.services`), so `flywheel stop` stops exactly these.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from console import process as console
from flywheel.errors import FlywheelError
from flywheel.services import Service, answers, port_taken
from flywheel.settings import REPO_ROOT, Settings
from labeling import server as labelstudio
from serving import process as scoring_api

WORK_POOL = "flywheel"


@dataclass(frozen=True)
class Stack:
    prefect_api_url: str
    webhook_url: str
    deployments: list[str]
    console_url: str


def _service(settings: Settings, name: str, title: str) -> Service:
    return Service(
        title, settings.root / "stack" / name, f"FLYWHEEL_SERVICE={name}:{settings.root}"
    )


def _services(settings: Settings) -> dict[str, Service]:
    return {
        "webhooks": _service(settings, "webhooks", "the webhook receiver"),
        "worker": _service(settings, "worker", "the Prefect worker"),
        "prefect": _service(settings, "prefect", "the Prefect server"),
    }


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _prefect(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(
        [_bin("prefect"), "--no-prompt", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = " / ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise FlywheelError(f"{what} failed: {tail}")


def _deployments(api_url: str) -> list[str]:
    answer = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=10)
    answer.raise_for_status()
    flows = httpx.post(f"{api_url}/flows/filter", json={}, timeout=10).json()
    names = {f["id"]: f["name"] for f in flows}
    return sorted(f"{names.get(d['flow_id'], '?')}/{d['name']}" for d in answer.json())


def _worker_online(api_url: str) -> bool:
    try:
        answer = httpx.post(f"{api_url}/work_pools/{WORK_POOL}/workers/filter", json={}, timeout=5)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and any(w.get("status") == "ONLINE" for w in answer.json())


def start_stack(
    settings: Settings,
    prefect_port: int = 4200,
    webhook_port: int = 8090,
    timeout_s: float = 120,
    console_port: int = console.DEFAULT_PORT,
) -> Stack:
    """Start (or find running) the Prefect server, deploy, and start the worker, the webhook
    receiver and the operations console."""
    services = _services(settings)
    server = services["prefect"]
    pid = server.pid()
    # a server already running keeps its port
    api_url = server.recorded()["url"] if pid else f"http://127.0.0.1:{prefect_port}/api"
    env = {
        **os.environ,
        "FLYWHEEL_HOME": str(settings.root),
        "PREFECT_HOME": str(settings.root / "stack" / "prefect-home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    if pid is None:
        if port_taken("127.0.0.1", prefect_port):
            raise FlywheelError(f"port {prefect_port} is in use by another program")
        command = [_bin("prefect"), "server", "start", "--host", "127.0.0.1"]
        pid = server.spawn([*command, "--port", str(prefect_port)], env, url=api_url)
    server.wait(pid, lambda: answers(f"{api_url}/health"), timeout_s)

    _prefect(
        ["work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
        env,
        "creating the work pool",
    )
    _prefect(["deploy", "--all"], env, "deploying prefect.yaml")

    worker = services["worker"]
    pid = worker.pid()
    if pid is None:
        pid = worker.spawn([_bin("prefect"), "worker", "start", "--pool", WORK_POOL], env)
    worker.wait(pid, lambda: _worker_online(api_url), timeout_s)

    receiver = services["webhooks"]
    pid = receiver.pid()
    webhook_url = receiver.recorded()["url"] if pid else f"http://127.0.0.1:{webhook_port}"
    if pid is None:
        if port_taken("127.0.0.1", webhook_port):
            raise FlywheelError(f"port {webhook_port} is in use by another program")
        command = [_bin("flywheel"), "label", "listen", "--via-prefect"]
        pid = receiver.spawn([*command, "--port", str(webhook_port)], env, url=webhook_url)
    receiver.wait(pid, lambda: answers(f"{webhook_url}/healthz"), timeout_s)
    console_url = console.start(settings, console_port, timeout_s)
    return Stack(api_url, f"{webhook_url}/webhooks/labelstudio", _deployments(api_url), console_url)


def stop_all(settings: Settings) -> list[tuple[str, bool]]:
    """Stop what this home started, the consumers before what they consume."""
    stopped = [("scoring API", scoring_api.stop(settings)), ("console", console.stop(settings))]
    stopped += [(s.name, s.stop()) for s in _services(settings).values()]
    return [*stopped, ("Label Studio", labelstudio.service(settings).stop())]
