"""Label Studio's install reports its progress from pip's own lines, and a failed install says
what pip said. pip is a stand-in script here; the real install runs in the integration tests."""

import stat

import pytest

from flywheel.errors import FlywheelError
from labeling.server import LOCK, _pip_install


def _fake_pip(venv, lines: list[str], code: int) -> None:
    pip = venv / "bin" / "pip"
    pip.parent.mkdir(parents=True)
    body = "".join(f"echo '{line}'\n" for line in lines)
    pip.write_text(f"#!/bin/sh\n{body}exit {code}\n")
    pip.chmod(pip.stat().st_mode | stat.S_IXUSR)


def test_each_collected_requirement_moves_the_bar(tmp_path):
    total = sum(1 for line in LOCK.read_text().splitlines() if "==" in line)
    _fake_pip(
        tmp_path,
        [
            "Collecting label-studio==1.23.2",
            "  Using cached x.whl",
            "Collecting django==5.1",
            "Installing collected packages: django, label-studio",
            "Successfully installed",
        ],
        0,
    )
    heard = []
    _pip_install(tmp_path, lambda *said: heard.append(said))
    assert heard == [
        ("installing Label Studio: collecting", 1, total),
        ("installing Label Studio: collecting", 2, total),
        ("installing Label Studio: unpacking", total, total),
    ]


def test_a_failed_install_says_what_pip_said(tmp_path):
    _fake_pip(tmp_path, ["Collecting nothing==0", "ERROR: No matching distribution"], 1)
    with pytest.raises(FlywheelError, match="failed: Collecting nothing==0 / ERROR: No matching"):
        _pip_install(tmp_path, lambda *said: None)
