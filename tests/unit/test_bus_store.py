"""The bus's own tables: inbox dedupe, outbox order and bounds, session counter."""

import pytest

from bus.store import BusStore, open_database
from bus.url import BrokerUrl, BrokerUrlError


def a_store(max_outbox: int = 10_000) -> BusStore:
    return BusStore(open_database(":memory:"), max_outbox=max_outbox)


def test_an_event_id_is_claimed_once_per_source() -> None:
    store = a_store()
    assert store.claim("/drones/d-1", "e-1")
    assert not store.claim("/drones/d-1", "e-1")
    assert store.claim("/drones/d-2", "e-1")


def test_the_outbox_hands_out_rows_in_the_order_they_were_queued() -> None:
    store = a_store()
    for i in range(5):
        store.enqueue(f"t/{i}", b"x", qos=1, retain=False)
    rows = store.pending(3)
    assert [r.topic for r in rows] == ["t/0", "t/1", "t/2"]
    store.mark_sent(rows[-1].seq)
    assert [r.topic for r in store.pending(10)] == ["t/3", "t/4"]


def test_a_retained_snapshot_replaces_an_unsent_one_on_the_same_topic() -> None:
    store = a_store()
    store.enqueue("drones/d-1/state", b"old", qos=1, retain=True, supersede=True)
    store.enqueue("drones/d-1/jobs/j/update", b"u", qos=1, retain=False)
    store.enqueue("drones/d-1/state", b"new", qos=1, retain=True, supersede=True)
    assert [(r.topic, r.payload) for r in store.pending(10)] == [
        ("drones/d-1/jobs/j/update", b"u"),
        ("drones/d-1/state", b"new"),
    ]


def test_every_version_of_a_retained_status_change_is_kept() -> None:
    store = a_store()
    store.enqueue("deliveries/x/status", b"v1", qos=1, retain=True)
    store.enqueue("deliveries/x/status", b"v2", qos=1, retain=True)
    assert [r.payload for r in store.pending(10)] == [b"v1", b"v2"]


def test_a_full_outbox_drops_the_oldest_droppable_rows_and_never_the_others() -> None:
    store = a_store(max_outbox=4)
    store.enqueue("update/1", b"", qos=1, retain=False)
    for i in range(5):
        store.enqueue(f"event/{i}", b"", qos=1, retain=False, droppable=True)
    store.enqueue("update/2", b"", qos=1, retain=False)
    assert [r.topic for r in store.pending(10)] == ["update/1", "event/3", "event/4", "update/2"]


def test_the_session_counter_grows_with_each_start() -> None:
    store = a_store()
    assert [store.next_session() for _ in range(3)] == [1, 2, 3]


def test_a_broker_url_carries_credentials_and_defaults_the_port() -> None:
    url = BrokerUrl.parse("mqtt://d%2D1:p%40ss@broker.local")
    assert (url.host, url.port, url.username, url.password, url.tls) == (
        "broker.local",
        1883,
        "d-1",
        "p@ss",
        False,
    )
    assert BrokerUrl.parse("mqtts://h").port == 8883
    assert "p@ss" not in str(url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:1", "scheme"),
        ("mqtt://", "missing host"),
        ("mqtt://h:99999", "Port out of range"),
    ],
)
def test_a_bad_broker_url_names_the_problem(url: str, problem: str) -> None:
    with pytest.raises(BrokerUrlError, match=problem):
        BrokerUrl.parse(url)
