"""`healthhut db`: migrate, check and back up the local database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthhut.cli.common import console, print_json, state

if TYPE_CHECKING:
    from healthhut.records.db import SchemaStatus

app = typer.Typer(no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _status_document(status: SchemaStatus) -> dict[str, Any]:
    return {"path": status.path, "current": status.current, "head": status.head,
            "up_to_date": status.up_to_date, "integrity": status.integrity}


def _print_status(status: SchemaStatus, as_json: bool) -> None:
    if as_json:
        print_json(_status_document(status))
        return
    out = console()
    out.print(f"database {status.path}")
    out.print(f"  schema revision {status.current or '(empty)'}; newest {status.head}"
              + ("" if status.up_to_date else "  [yellow]needs `healthhut db migrate`[/]"))
    if status.integrity is not None:
        out.print(f"  integrity: {status.integrity}")


@app.command("migrate")
def migrate_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Create the database if needed and bring its schema to the newest revision."""
    from healthhut.records.db import migrate_database

    _print_status(migrate_database(state(ctx).config.store.path), as_json)


@app.command("check")
def check_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Report the schema revision and SQLite's integrity check; exit 1 if either is not right."""
    from healthhut.records.db import check_database

    status = check_database(state(ctx).config.store.path)
    _print_status(status, as_json)
    if not status.up_to_date or status.integrity not in (None, "ok"):
        raise typer.Exit(1)


@app.command("backup")
def backup_command(
    ctx: typer.Context,
    destination: Annotated[Path, typer.Argument(help="Where to write the copy (created 0600; must not exist).")],
    as_json: JsonOption = False,
) -> None:
    """Copy the live database with SQLite's online backup API (safe while the services run)."""
    from healthhut.records.backup import backup_database

    result = backup_database(state(ctx).config.store.path, destination)
    if as_json:
        print_json({"source": str(state(ctx).config.store.path), "destination": str(destination),
                    "pages": getattr(result, "pages", None)})
    else:
        console().print(f"backed up {state(ctx).config.store.path} -> {destination}")
