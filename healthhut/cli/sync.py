"""`healthhut sync`: delivery status, one-shot push, dead letters and their replay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from healthhut.cli.common import console, open_store, print_json, state

if TYPE_CHECKING:
    from healthhut.config import Config

app = typer.Typer(no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def run_sync(config: Config) -> None:
    """`healthhut run sync`: the long-lived delivery service (stops on SIGTERM/SIGINT)."""
    from healthhut.sync.service import run_sync as serve_until_stopped

    serve_until_stopped(config)


@app.command("status")
def status_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Counts by state, age of the oldest undelivered record, last success and error, circuit state."""
    from healthhut.sync.status import read_status, readable_age
    from healthhut.sync.worker import utc_now

    store = open_store(ctx)
    try:
        status = read_status(store, now=utc_now())
    finally:
        store.close()
    if as_json:
        print_json(status.to_json())
        return
    out = console()
    counts = ", ".join(f"{name} {n}" for name, n in sorted(status.counts.items()))
    out.print(f"outbox: {counts}")
    age = status.oldest_pending_age_s
    out.print(f"oldest undelivered: {'none' if age is None else readable_age(age) + ' ago'}")
    out.print(f"last success: {status.last_success_at or 'never'}")
    if status.last_error:
        out.print(f"last error: {status.last_error} (at {status.last_error_at})")
    out.print(f"platform circuit: {status.circuit}")


@app.command("push")
def push_command(
    ctx: typer.Context,
    until_empty: Annotated[bool, typer.Option("--until-empty", help="Keep going (waiting out retries and an "
                                              "unreachable platform) until nothing deliverable is left.")] = False,
    max_wait: Annotated[float, typer.Option("--max-wait", help="Give up after this many seconds.")] = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Deliver the outbox now; exit 0 when everything deliverable was delivered, 1 otherwise."""
    import asyncio

    from healthhut.sync.service import push

    result = asyncio.run(push(state(ctx).config, until_empty=until_empty, max_wait=max_wait))
    report, status = result.report, result.status
    if as_json:
        print_json({"sent": report.sent, "retried": report.retried, "dead": report.dead,
                    "requests": report.requests, "status": status.to_json()})
    else:
        console().print(f"sent {report.sent}, deferred {report.retried}, dead-lettered {report.dead} "
                        f"in {report.requests} requests; {status.deliverable} still to deliver")
    if status.deliverable:
        raise typer.Exit(1)


@app.command("dead")
def dead_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Records the platform refused, with its reason (OperationOutcome)."""
    import json

    store = open_store(ctx)
    try:
        letters = store.dead_letters()
    finally:
        store.close()
    if as_json:
        print_json([{"id": d.outbox_id, "observation_id": d.observation_id, "code": d.code, "reason": d.reason,
                     "outcome": json.loads(d.outcome_json) if d.outcome_json else None,
                     "dead_at": d.dead_at.isoformat() if d.dead_at else None, "attempts": d.attempts}
                    for d in letters])
        return
    out = console()
    if not letters:
        out.print("no dead letters")
        return
    for d in letters:
        out.print(f"{d.outbox_id}  observation {d.observation_id}  {d.code}  {d.dead_at:%Y-%m-%d %H:%M}  "
                  f"{d.reason or ''}" if d.dead_at else f"{d.outbox_id}  {d.reason or ''}")


@app.command("retry")
def retry_command(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids (from `healthhut sync dead`).")] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Put dead letters back in the queue after the cause was fixed."""
    from healthhut.errors import UsageError
    from healthhut.sync.worker import utc_now

    if bool(ids) == all_dead:
        raise UsageError("give dead-letter ids or --all (not both)")
    store = open_store(ctx)
    try:
        count = store.retry_dead(None if all_dead else ids, now=utc_now())
    finally:
        store.close()
    console().print(f"{count} record(s) queued again")
