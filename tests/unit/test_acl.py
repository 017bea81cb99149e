import pytest

from broker.acl import ROLES, Grant, allowed, grants, mosquitto_acl
from contracts.events import REGISTRY, DeadLetter, ServiceStatus
from contracts.producers import producer_of
from contracts.topics import DEFAULT_ROOT
from tests.builders import DRONE, an_example

LOGINS = {"drone": DRONE, "client": "shop-1", "operator": "ops", "monitor": "watch"}


def login_of(role: str) -> str:
    return LOGINS.get(role, role)


ABOUT_THEMSELVES = (ServiceStatus, DeadLetter)  # each writer its own: see the next test


@pytest.mark.parametrize(
    "event_type", sorted(t for t, cls in REGISTRY.items() if cls not in ABOUT_THEMSELVES)
)
def test_each_event_is_writable_by_its_producer_alone(event_type: str) -> None:
    event_cls = REGISTRY[event_type]
    topic = an_example(event_cls).resolved_topic(DEFAULT_ROOT)
    writers = {r for r in ROLES if allowed(grants(r, login_of(r)), "write", topic)}
    producer = {"agent": "drone"}.get(producer_of(event_type), producer_of(event_type))
    assert writers == {producer}


@pytest.mark.parametrize("role", ["drone", "package", "scheduler", "delivery"])
def test_a_component_writes_its_own_status_and_dead_letters_only(role: str) -> None:
    mine = grants(role, login_of(role))
    own = login_of(role)
    status = "drones/{}/status" if role == "drone" else "services/{}/status"
    assert allowed(mine, "write", f"{DEFAULT_ROOT}/{status.format(own)}")
    assert allowed(mine, "write", f"{DEFAULT_ROOT}/dlq/{own}")
    assert not allowed(mine, "write", f"{DEFAULT_ROOT}/{status.format('someone-else')}")
    assert not allowed(mine, "write", f"{DEFAULT_ROOT}/dlq/someone-else")


@pytest.mark.parametrize(
    ("granted", "requested", "covered"),
    [
        ("a/b/+/d", "a/b/c/d", True),
        ("a/b/+/d", "a/b/+/d", True),
        ("a/b/c/d", "a/b/+/d", False),  # a wildcard asks for more than one level's worth
        ("a/#", "a/b/#", True),
        ("a/b/#", "a/#", False),
        ("a/+", "a/b/c", False),
        ("a/+/c", "a/b", False),
        ("a/#", "a", True),  # MQTT: `#` also matches the parent level
    ],
)
def test_a_grant_covers_a_subscription_only_if_it_covers_all_it_matches(
    granted: str,
    requested: str,
    covered: bool,  # noqa: FBT001 - a parameter of the table
) -> None:
    assert allowed((Grant("read", granted),), "read", requested) is covered


def test_a_drone_subscribes_to_its_own_jobs_and_commands_only() -> None:
    mine = grants("drone", "d-1")
    assert allowed(mine, "read", f"{DEFAULT_ROOT}/drones/d-1/jobs/+/offer")
    assert allowed(mine, "read", f"{DEFAULT_ROOT}/drones/d-1/cmd/+")
    assert not allowed(mine, "read", f"{DEFAULT_ROOT}/drones/+/jobs/+/offer")
    assert not allowed(mine, "read", f"{DEFAULT_ROOT}/drones/d-2/cmd/+")
    assert not allowed(mine, "read", f"{DEFAULT_ROOT}/deliveries/+/status")


def test_the_mosquitto_acl_has_a_block_per_login_and_no_pattern_for_all() -> None:
    text = mosquitto_acl({"d-1": "drone", "shop": "client"})
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "user d-1"
    assert "topic write murmur/v1/drones/d-1/telemetry" in lines
    assert "user shop" in lines
    assert "topic write murmur/v1/deliveries/+/requested" in lines
    assert all(line.startswith(("user ", "topic read ", "topic write ")) for line in lines)


def test_an_unknown_role_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown role 'pilot'; one of drone, package"):
        grants("pilot", "p-1")
