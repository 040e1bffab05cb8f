"""`banking webhooks run`: number events and deliver webhooks."""

from __future__ import annotations

from typing import Annotated

import typer

from banking.cli.common import console, run_with_database

app = typer.Typer(help="Events and webhook delivery.", no_args_is_help=True)


@app.command("run")
def webhooks_run(
    once: Annotated[
        bool,
        typer.Option("--once", help="One pass (number events, deliver what is due), then exit."),
    ] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between passes (default EVENTS_DISPATCH_INTERVAL_S).")
    ] = 0.0,
) -> None:
    """Run the events dispatcher as a worker of its own: number new events and deliver
    webhooks. On PostgreSQL it takes part in the leader election with the API processes;
    on SQLite, set EVENTS_DISPATCH_INTERVAL_S=0 for the server while this runs."""
    from banking.events import dispatcher

    async def work(db: object) -> tuple[int, int]:
        if once:
            http = dispatcher.http_client(db.settings)  # type: ignore[attr-defined]
            try:
                return await dispatcher.tick(db, http)  # type: ignore[arg-type]
            finally:
                await http.aclose()
        every = interval or db.settings.events_dispatch_interval_s or 0.25  # type: ignore[attr-defined]
        await dispatcher.run(db, every)  # type: ignore[arg-type]
        return 0, 0

    published, delivered = run_with_database(work)
    console.print(f"published {published} event(s), delivered {delivered} webhook(s)")
