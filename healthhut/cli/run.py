"""`healthhut run`: the long-lived services that systemd starts."""

from __future__ import annotations

import typer

from healthhut.cli.common import state

app = typer.Typer(no_args_is_help=True)


@app.command("sync")
def run_sync_command(ctx: typer.Context) -> None:
    """Run the sync service: deliver the outbox to the district FHIR server until stopped."""
    from healthhut.cli.sync import run_sync
    from healthhut.log import setup_logging

    setup_logging(debug=state(ctx).debug, service=True)
    run_sync(state(ctx).config)
