"""A Label Studio server owned by this Flywheel home: installed, started, checked and stopped.

Label Studio's dependencies clash with the project's (docs/dependencies.md), so it lives in its own
virtualenv, installed on first use and shared by every home on the machine. Its data lives in the
home. A fresh data directory spends ~30 s in migrations, so the first install also keeps a migrated,
user-less copy that new homes start from in seconds. The admin user and its API token come from
settings (or are generated once and kept in the home), so nothing prompts. `stop` only ever
signals the process this home started, identified by its pid file and its command line.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flywheel.errors import FlywheelError
from flywheel.files import file_lock, generated_once
from flywheel.progress import Progress, quiet
from flywheel.services import Service, answers, port_taken
from flywheel.settings import Settings

REQUIREMENT = "label-studio==1.23.2"
LOCK = Path(__file__).with_name("label-studio.lock")  # its dependencies, pinned
_MARKER = ".flywheel-installed"
_TEMPLATE = "flywheel-template-data"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    token: str


@dataclass(frozen=True)
class Status:
    running: bool
    url: str
    pid: int | None = None
    detail: str = ""


def credentials(settings: Settings) -> Credentials:
    """The admin login: the token from settings if given, else generated once for this home."""
    stored = generated_once(
        settings.labelstudio_dir / "credentials.json",
        lambda: {"password": secrets.token_urlsafe(18), "token": secrets.token_hex(20)},
    )
    return Credentials(
        settings.labelstudio_username,
        stored["password"],
        settings.labelstudio_api_key or stored["token"],
    )


def _venv(settings: Settings) -> Path:
    return settings.labelstudio_venv.expanduser().resolve()


def _bin(settings: Settings) -> Path:
    return _venv(settings) / "bin" / "label-studio"


@contextmanager
def _install_lock(venv: Path):
    """Two homes starting at once must not install into the same virtualenv together."""
    with file_lock(venv.parent / f"{venv.name}.lock"):
        yield


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise FlywheelError(f"{what} failed: {' / '.join(tail) or f'exit {done.returncode}'}")


def _base_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """A clean environment: Label Studio also reads unprefixed names such as USERNAME and PORT."""
    home = settings.labelstudio_dir
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }


def _pip_install(venv: Path, progress: Progress) -> None:
    """pip install against the lock, reporting each requirement pip collects (of the lock's
    pins) and then the install itself, which takes most of the time."""
    total = sum(1 for line in LOCK.read_text().splitlines() if "==" in line)
    command = [str(venv / "bin" / "pip"), "install", "--progress-bar", "off", "-c", str(LOCK)]
    lines: list[str] = []
    collected = 0
    with subprocess.Popen(
        [*command, REQUIREMENT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as pip:
        for line in pip.stdout or []:
            lines.append(line)
            if line.startswith("Collecting "):
                collected += 1
                progress("installing Label Studio: collecting", min(collected, total), total)
            elif line.startswith("Installing collected packages"):
                progress("installing Label Studio: unpacking", total, total)
    if pip.returncode != 0:
        tail = [line.strip() for line in lines if line.strip()][-5:]
        raise FlywheelError(f"pip install {REQUIREMENT} failed: {' / '.join(tail)}")


def ensure_installed(settings: Settings, progress: Progress = quiet) -> Path:
    """Label Studio's virtualenv, installed on first use, plus the migrated template data dir."""
    venv = _venv(settings)
    wanted = f"{REQUIREMENT} {hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]}\n"
    with _install_lock(venv):
        marker = venv / _MARKER
        if not marker.is_file() or marker.read_text() != wanted:
            shutil.rmtree(venv, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(venv)], "creating Label Studio's virtualenv")
            _pip_install(venv, progress)
            marker.write_text(wanted)
        template = venv / _TEMPLATE
        if not template.is_dir():
            staging = venv / f".{_TEMPLATE}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            # `label-studio version` applies the migrations to its data dir, then exits.
            progress("preparing Label Studio's database", 0, None)
            _run(
                [str(_bin(settings)), "version"],
                "migrating Label Studio's template database",
                env=_base_env(settings, staging),
            )
            staging.rename(template)
    return venv


def _address(settings: Settings) -> tuple[str, int]:
    parts = urlsplit(settings.labelstudio_url)
    host, port = parts.hostname or "", parts.port or 80
    if host not in {"127.0.0.1", "localhost"}:
        raise FlywheelError(
            f"LABEL_STUDIO_URL is {settings.labelstudio_url}: only a local Label Studio "
            "(127.0.0.1) is started by Flywheel; a remote one is run by its owners"
        )
    return "127.0.0.1", port


def _data_dir(settings: Settings) -> Path:
    return settings.labelstudio_dir / "data"


def service(settings: Settings) -> Service:
    """This home's Label Studio: the one whose data dir is this home's."""
    return Service(
        "Label Studio",
        settings.labelstudio_dir,
        f"LABEL_STUDIO_BASE_DATA_DIR={_data_dir(settings)}",
    )


def _answers(url: str, token: str) -> bool:
    return answers(
        f"{url.rstrip('/')}/api/current-user/whoami", {"Authorization": f"Token {token}"}
    )


def status(settings: Settings) -> Status:
    """Whether this home's Label Studio runs, and whether it answers with our token."""
    url = settings.labelstudio_url
    server = service(settings)
    recorded = server.recorded().get("pid")
    if recorded is None:
        return Status(False, url, detail="not started by this home")
    if server.pid() is None:
        return Status(False, url, detail=f"stale pid file (process {recorded} is gone)")
    if not _answers(url, credentials(settings).token):
        return Status(True, url, recorded, detail="running but not answering yet")
    return Status(True, url, recorded, detail="answering")


# The reserved networks Label Studio refuses to reach (label_studio/core/utils/io.py, 1.23).
RESERVED_NETWORKS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "233.252.0.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "::ffff:0:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001:0000::/32",
    "2001:20::/28",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)


def banned_networks(allowed: list[str]) -> list[str]:
    """Label Studio's reserved networks less the exact addresses it may reach."""
    exempt = [ipaddress.ip_network(a.strip()) for a in allowed if a.strip()]
    banned: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for network in map(ipaddress.ip_network, RESERVED_NETWORKS):
        pieces = [network]
        for hole in exempt:
            pieces = [
                rest
                for piece in pieces
                for rest in (
                    piece.address_exclude(hole)
                    if hole.version == piece.version and hole.subnet_of(piece)
                    else [piece]
                )
            ]
        banned += pieces
    return [str(n) for n in banned]


def ssrf_env(settings: Settings) -> dict[str, str]:
    """SSRF protection on, with the reserved networks banned but for the webhook receiver's
    addresses (`labelstudio_webhook_hosts`, loopback's 127.0.0.1 by default): Label Studio may
    post events there and reach nothing else inside (no cloud metadata, no private network)."""
    try:
        banned = banned_networks(settings.labelstudio_webhook_hosts.split(","))
    except ValueError as exc:
        raise FlywheelError(f"FLYWHEEL_LABELSTUDIO_WEBHOOK_HOSTS: {exc}") from exc
    return {
        "SSRF_PROTECTION_ENABLED": "true",
        "USE_DEFAULT_BANNED_SUBNETS": "false",
        "USER_ADDITIONAL_BANNED_SUBNETS": ",".join(banned),
    }


def start(settings: Settings, progress: Progress = quiet) -> Status:
    """Install if needed, start on 127.0.0.1 and wait until the API answers our token."""
    server = service(settings)
    host, port = _address(settings)
    pid = server.pid()
    if pid is None:
        if port_taken(host, port):
            # Label Studio would silently move to the next free port; refuse instead.
            raise FlywheelError(
                f"port {port} is in use by another program; set LABEL_STUDIO_URL to a free port"
            )
        venv = ensure_installed(settings, progress)
        progress("starting Label Studio", 0, None)
        data_dir = _data_dir(settings)
        if not (data_dir / "label_studio.sqlite3").is_file():
            shutil.rmtree(data_dir, ignore_errors=True)
            shutil.copytree(venv / _TEMPLATE, data_dir)
        creds = credentials(settings)
        env = _base_env(settings, data_dir) | {
            "LABEL_STUDIO_USERNAME": creds.username,
            "LABEL_STUDIO_PASSWORD": creds.password,
            "LABEL_STUDIO_USER_TOKEN": creds.token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            **ssrf_env(settings),
        }
        command = [str(_bin(settings)), "start", "--no-browser", "--internal-host", host]
        pid = server.spawn([*command, "--port", str(port)], env, url=settings.labelstudio_url)
    token = credentials(settings).token
    server.wait(
        pid,
        lambda: _answers(settings.labelstudio_url, token),
        settings.labelstudio_start_timeout_s,
    )
    return Status(True, settings.labelstudio_url, pid, detail="answering")


def stop(settings: Settings, timeout_s: float = 20.0) -> Status:
    """Stop the server this home started (and nothing else); a no-op when it is not running."""
    if not service(settings).stop(timeout_s):
        return status(settings)
    return Status(False, settings.labelstudio_url, detail="stopped")
