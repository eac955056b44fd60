"""The `healthhut` command: builds the typer app from thin command modules and maps errors to exit codes.

Exit codes: 0 ok, 1 the command failed, 2 usage or configuration error. A HealthhutError prints as one line
on stderr; `--debug` adds the traceback. Command modules import their heavy dependencies inside the
command functions, so `healthhut --help` only pays for typer.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from healthhut.cli import db, decode, devices, records, replay, run, sleep, sync
from healthhut.cli.common import CliState

app = typer.Typer(
    name="healthhut",
    help="The health-hut gateway: read devices, keep FHIR records safely, deliver them to the platform once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rich.markdown would cost ~150 ms of start-up
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option("--config", "-c", help="TOML config file "
                      "(default: $HEALTHHUT_CONFIG, /etc/healthhut/healthhut.toml, embedded defaults).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    ctx.obj = CliState(config_path=config, debug=debug)
    from healthhut.log import setup_logging

    setup_logging(debug=debug)


app.command("decode")(decode.decode_command)
app.command("replay")(replay.replay_command)
app.command("demo")(replay.demo_command)
app.add_typer(records.app, name="records", help="Clinician views: patients, timelines, flags, exports.")
app.add_typer(db.app, name="db", help="The local database: migrate, check, back up.")
app.add_typer(run.app, name="run", help="Run a long-lived service (the sync service).")
app.add_typer(devices.app, name="devices", help="Find, probe, read and sniff devices (Bluetooth and serial).")
app.add_typer(sleep.app, name="sleep", help="Sleep screening: analyse and import overnight recordings.")
app.add_typer(sync.app, name="sync", help="Delivery to the district platform: status, push, dead letters.")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning our errors into one line and an exit code."""
    import click

    from healthhut.errors import HealthhutError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="healthhut", standalone_mode=False)
    except HealthhutError as exc:
        if debug:
            raise
        sys.stderr.write(f"healthhut: {exc}\n")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("healthhut: aborted\n")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
