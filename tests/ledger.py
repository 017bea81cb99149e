"""A tiny consumer app for bus tests: applies DeliveryRequested into a ledger, once.

Run in-process (`ledger_bus`) or as a process (`python -m tests.ledger --broker URL --db P`)
that tests kill with SIGKILL. The package tag steers faults, so a test can choose the moment:
`crash-before-commit`, `crash-after-commit` (once each, remembered by a marker file) and
`fail-always` (the handler raises every time).
"""

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from bus.bus import Bus
from bus.outbox import Outbox
from bus.store import open_database
from bus.transport import open_transport
from contracts import Envelope
from contracts.events import DeliveryRequested, PackageReady, ServiceStatus


def ledger_bus(url: str, db_path: Path, *, component: str = "ledger") -> Bus:
    """A bus whose DeliveryRequested handler records the delivery and emits PackageReady."""
    db = open_database(db_path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS applied (row INTEGER PRIMARY KEY AUTOINCREMENT,"
        " delivery_id TEXT NOT NULL, event_id TEXT NOT NULL)"
    )
    markers = db_path.parent

    def once(name: str) -> bool:
        marker = markers / f"{component}.{name}"
        if marker.exists():
            return False
        marker.touch()
        return True

    def on_requested(event: Envelope[Any], out: Outbox) -> None:
        request: DeliveryRequested = event.data
        tag = request.package.tag
        if tag == "crash-before-commit" and once(tag):
            os.kill(os.getpid(), signal.SIGKILL)
        if tag == "fail-always":
            msg = "this handler always fails"
            raise RuntimeError(msg)
        db.execute(
            "INSERT INTO applied (delivery_id, event_id) VALUES (?, ?)",
            [request.delivery_id, event.id],
        )
        out.emit(
            PackageReady(
                package_id=request.package.package_id,
                delivery_id=request.delivery_id,
                size=request.package.size,
                weight_kg=request.package.weight_kg,
            )
        )
        if tag == "crash-after-commit" and once(tag):
            # Runs after the commit, before the relay task can publish.
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGKILL)

    # It plays the Package service: decoders accept PackageReady only from /cloud/package.
    bus = Bus(
        component=component,
        transport=open_transport(url),
        db=db,
        source="/cloud/package",
        presence=lambda link, session: ServiceStatus(service="package", link=link, session=session),
        reconnect_max_s=1.0,
    )
    bus.route(DeliveryRequested, on_requested)
    return bus


def applied(db_path: Path) -> list[tuple[str, str]]:
    """(delivery_id, event_id) rows in the order they were applied."""
    db = open_database(db_path)
    try:
        return [(d, e) for d, e in db.execute("SELECT delivery_id, event_id FROM applied")]
    finally:
        db.conn.close()


async def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--component", default="ledger")
    args = parser.parse_args()
    bus = ledger_bus(args.broker, args.db, component=args.component)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runner = asyncio.create_task(bus.run())
    await stop.wait()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(_main())
