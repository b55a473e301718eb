"""Background servers a Flywheel home starts and stops: Label Studio, the scoring API, Prefect.

Each one runs detached (its own session, so a terminal's Ctrl-C does not reach it) with its log
and pid file in the home. A pid alone is not trusted, since pids are reused: the process must
also carry the service's marker in its environment, a variable only this home's server has. So
`stop` only ever signals what this home started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from flywheel.errors import FlywheelError
from flywheel.files import write_json_atomic


@dataclass(frozen=True)
class Service:
    """One background server: where its pid file and log live, and how to recognise it."""

    name: str
    folder: Path
    marker: str  # "NAME=value", set in the server's environment

    @property
    def pid_file(self) -> Path:
        return self.folder / "server.json"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def ours(self, pid: int) -> bool:
        """True if `pid` is alive (not a zombie) and carries this service's marker."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return self.marker.encode() in environ and state != "Z"

    def recorded(self) -> dict:
        """What the pid file says (pid, url), or {} when there is none."""
        try:
            return json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return {}

    def pid(self) -> int | None:
        """The running server's pid, or None (no pid file, or a stale one)."""
        pid = self.recorded().get("pid")
        return pid if pid is not None and self.ours(pid) else None

    def spawn(self, command: list[str], env: dict[str, str], **recorded: object) -> int:
        """Start the server detached, with the marker set, and record its pid."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name, _, value = self.marker.partition("=")
        with self.log.open("ab") as out:
            process = subprocess.Popen(
                command,
                env={**env, name: value},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        write_json_atomic({"pid": process.pid, **recorded}, self.pid_file)
        return process.pid

    def wait(self, pid: int, ready: Callable[[], bool], timeout_s: float) -> None:
        """Return once `ready()` holds; fail with the log's tail if the server dies or stalls."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.ours(pid):
                raise FlywheelError(f"{self.name} exited while starting: {log_tail(self.log)}")
            if ready():
                return
            time.sleep(0.25)
        raise FlywheelError(f"{self.name} was not ready within {timeout_s:.0f} s; log: {self.log}")

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the server this home started; False when none was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while self.ours(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.ours(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def start_local(
    server: Service, command: list[str], env: dict[str, str], port: int, timeout_s: float
) -> str:
    """Run `command --port PORT` as this home's `server` on 127.0.0.1, or find it running (it
    keeps the port it started on); its URL once `/healthz` answers."""
    pid = server.pid()
    url = server.recorded().get("url") if pid is not None else f"http://127.0.0.1:{port}"
    if pid is None:
        if port_taken("127.0.0.1", port):
            raise FlywheelError(f"port {port} is in use by another program; choose another port")
        pid = server.spawn([*command, "--port", str(port)], env, url=url)
    server.wait(pid, lambda: answers(f"{url}/healthz"), timeout_s)
    return url


def answers(url: str, headers: dict[str, str] | None = None) -> bool:
    """True if a GET of `url` succeeds now: a readiness check for `Service.wait`."""
    try:
        return httpx.get(url, headers=headers, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def log_tail(path: Path, lines: int = 8) -> str:
    if not path.is_file():
        return ""
    return " / ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
