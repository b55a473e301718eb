"""What every command group shares: the consoles, the common options, and loading a policy."""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Annotated

import typer
from rich.console import Console

from flywheel.errors import FlywheelError


class ExitCode(IntEnum):
    """How a command ended, for scripts to branch on."""

    OK = 0
    FAILED = 1  # one `error: …` line on stderr: bad input, a service down, nothing to do
    USAGE = 2  # a usage error: an unknown option, a value of the wrong type
    REJECTED = 3  # `flywheel promote`: the gate rejected (or, with --dry-run, would reject)
    CRASH = 70  # a bug (EX_SOFTWARE): FLYWHEEL_DEBUG=1 shows the traceback

    @classmethod
    def legend(cls) -> str:
        return "Exit codes: " + ", ".join(f"{code.value} {code.name.lower()}" for code in cls) + "."


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PolicyOption = Annotated[
    str, typer.Option("--policy", "-p", help="Policy name (in policies/) or YAML path.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def context(policy_name: str):
    """The settings, the policy and the lake a command works on."""
    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.settings import get_settings

    settings = get_settings()
    return settings, load_policy(policy_name, settings), Lake(settings.lake_dir)


def print_json(payload: object) -> None:
    out.print_json(json.dumps(payload, default=str))


def flow_result(state, what: str):
    """A flow run's return value, or its failure as one line."""
    if not state.is_completed():
        raise FlywheelError(f"{what} failed: {state.message}")
    return state.result()


def report_ignored(columns: list[str]) -> None:
    if columns:
        err.print(
            f"note: ignored column{'s' if len(columns) > 1 else ''} not in the contract: {', '.join(columns)}"
        )
