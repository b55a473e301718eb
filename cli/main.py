"""The `flywheel` command line: one module per command group, assembled here.

Commands import the heavy packages (MLflow, Prefect, LightGBM) only when they run, so `--help`
answers at once. Exit codes (`cli.common.ExitCode`, also in `flywheel --help`): 0 done; 1 a
failure the user can act on, as one `error: …` line; 2 a usage error, as click prints it, naming
the option; 3 the promotion gate rejected; 70 a crash (a bug), whose traceback FLYWHEEL_DEBUG=1
shows.
"""

from __future__ import annotations

import os
import sys

import typer

from cli import console, data, label, models, monitor, queues, serve, wheel
from cli.common import ExitCode, err
from flywheel.errors import FlywheelError

app = typer.Typer(
    name="flywheel",
    help="Reviewer decisions in, promoted risk classifiers out.",
    epilog=ExitCode.legend(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(data.simulate)
app.add_typer(data.decisions_app, name="decisions")
app.add_typer(data.golden_app, name="golden")
app.add_typer(data.dataset_app, name="dataset")
app.command()(models.train)
app.command()(models.promote)
app.command()(serve.serve)
app.add_typer(data.predictions_app, name="predictions")
app.add_typer(label.labelstudio_app, name="labelstudio")
app.add_typer(label.label_app, name="label")
app.add_typer(queues.queues_app, name="queues")
app.command()(monitor.monitor)
app.add_typer(monitor.alerts_app, name="alerts")
app.command()(console.console)
app.command()(wheel.cycle)
app.command()(models.rescore)
app.add_typer(wheel.stack_app, name="stack")
app.command()(wheel.stop)
app.command()(wheel.demo)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command and turn how it ended into one of `ExitCode`'s codes."""
    # Our own lines report progress; keep the libraries' INFO chatter out unless asked for.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    try:
        code = app(args=argv, prog_name="flywheel", standalone_mode=False)
        if isinstance(code, int):  # `typer.Exit(n)` comes back as a return value here
            return code
    # typer's exceptions are its own (it vendors click): these are the ones its parser raises.
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return ExitCode.FAILED
    except typer.TyperException as exc:
        exc.show()  # usage errors print the usage line and name the option, exit 2
        return exc.exit_code
    except FlywheelError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return ExitCode.FAILED
    except Exception as exc:
        if os.environ.get("FLYWHEEL_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(
            f"crash (a bug in flywheel, please report it): {type(exc).__name__}: {first}; "
            "FLYWHEEL_DEBUG=1 shows the traceback",
            markup=False,
            soft_wrap=True,
        )
        return ExitCode.CRASH
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
