"""A backlog in the scheduler: a burst of deliveries expiring together goes a batch per tick."""

from pathlib import Path

from bus.bus import Bus
from bus.memory_transport import MemoryBroker
from bus.store import open_database
from cloud.scheduler.service import _WAITING_BATCH, SchedulerService
from cloud.scheduler.store import Plan
from flight_model.clock import ManualClock
from tests.builders import a_delivery_request, a_package

BURST = 2 * _WAITING_BATCH + 100


def unassignable(scheduler: SchedulerService) -> list[str]:
    rows = scheduler.store._db.execute(
        "SELECT delivery_id FROM sched_deliveries WHERE plan = ? ORDER BY deadline",
        [Plan.UNASSIGNABLE],
    ).fetchall()
    return [row[0] for row in rows]


def test_a_burst_past_its_deadline_is_given_up_a_batch_per_tick_earliest_first(
    tmp_path: Path,
) -> None:
    bus = Bus(
        component="scheduler",
        transport=MemoryBroker().transport(),
        db=open_database(tmp_path / "s.db"),
        source="/cloud/scheduler",
    )
    clock = ManualClock()
    scheduler = SchedulerService(bus, clock)
    now = clock.now().timestamp()
    ids = [f"del-{i:04d}" for i in range(BURST)]
    with bus.transaction():
        for i, delivery_id in enumerate(ids):
            request = a_delivery_request(
                delivery_id=delivery_id, package=a_package(package_id=f"pkg-{i}")
            )
            scheduler.store.add_booking(request, event_id=f"e-{i}", deadline=now + i, now=now)
    clock.advance(BURST + 1)

    given_up = []
    for _ in range(3):
        with bus.transaction() as out:
            scheduler.tick(out)
        given_up.append(unassignable(scheduler))

    assert [len(batch) for batch in given_up] == [_WAITING_BATCH, 2 * _WAITING_BATCH, BURST]
    assert given_up[0] == ids[:_WAITING_BATCH]
    assert bus.store.outbox_size() == BURST  # one DeliveryUnassignable each
