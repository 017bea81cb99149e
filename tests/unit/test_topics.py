"""The topic tree: templates, filters, matching."""

import pytest

from contracts import REGISTRY, Event, topics
from contracts.topics import fill, filter_matches, match, template_params, to_filter
from tests.builders import an_example

OFFER = "drones/{drone_id}/jobs/{job_id}/offer"


def test_a_template_lists_its_parameters_in_order() -> None:
    assert template_params(OFFER) == ("drone_id", "job_id")
    assert template_params("dlq/{component}") == ("component",)
    assert template_params("a/b") == ()


@pytest.mark.parametrize(
    "template",
    ["drones/x{drone_id}", "drones/{drone_id}x", "drones/+", "drones/#", "drones//x", "/drones"],
)
def test_a_template_level_must_be_a_literal_or_one_whole_parameter(template: str) -> None:
    with pytest.raises(ValueError, match="must be a literal or one"):
        template_params(template)


def test_a_filter_leaves_unnamed_parameters_as_single_level_wildcards() -> None:
    assert to_filter(OFFER) == "murmur/v1/drones/+/jobs/+/offer"
    assert to_filter(OFFER, drone_id="d-1") == "murmur/v1/drones/d-1/jobs/+/offer"
    assert to_filter(OFFER, root="fleet") == "fleet/drones/+/jobs/+/offer"
    assert to_filter(OFFER, root="") == "drones/+/jobs/+/offer"


def test_fill_puts_values_in_their_levels() -> None:
    assert fill(OFFER, {"drone_id": "d-1", "job_id": "j-2"}) == "drones/d-1/jobs/j-2/offer"


def test_match_returns_the_parameters_of_an_instance_of_the_template() -> None:
    assert match(OFFER, "murmur/v1/drones/d-1/jobs/j-2/offer") == {
        "drone_id": "d-1",
        "job_id": "j-2",
    }
    assert match(OFFER, "drones/d-1/jobs/j-2/offer", root="") == {
        "drone_id": "d-1",
        "job_id": "j-2",
    }


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/drones/d-1/jobs/j-2/offer",
        "murmur/v1/drones/d-1/jobs/j-2/cancel",
        "murmur/v1/drones/d-1/jobs/j-2/offer/extra",
        "murmur/v1/drones/d-1/jobs/offer",
        "murmur/v1",
        "",
    ],
)
def test_match_returns_none_for_anything_else(topic: str) -> None:
    assert match(OFFER, topic) is None


@pytest.mark.parametrize(
    ("topic_filter", "topic"),
    [
        ("a/b", "a/b"),
        ("a/+", "a/b"),
        ("a/+", "a/"),
        ("+/+", "a/b"),
        ("a/#", "a/b/c"),
        ("a/#", "a"),
        ("#", "a/b/c"),
        ("$SYS/#", "$SYS/broker/uptime"),
        ("$share/scheduler/murmur/v1/drones/+/state", "murmur/v1/drones/d-1/state"),
        ("$share/g/#", "murmur/v1/dlq/package"),
    ],
)
def test_a_filter_matches_what_mqtt_would_deliver(topic_filter: str, topic: str) -> None:
    assert filter_matches(topic_filter, topic)


@pytest.mark.parametrize(
    ("topic_filter", "topic"),
    [
        ("a/b", "a/c"),
        ("a/+", "a/b/c"),
        ("a/+", "a"),
        ("a/b", "a/b/c"),
        ("a/b/c", "a/b"),
        ("a/#", "b/a"),
        ("#", "$SYS/broker/uptime"),
        ("+/broker/uptime", "$SYS/broker/uptime"),
        ("$share/scheduler/murmur/v1/drones/+/state", "murmur/v1/drones/d-1/telemetry"),
        ("$share/scheduler", "$share/scheduler"),
    ],
)
def test_a_filter_matches_nothing_mqtt_would_not_deliver(topic_filter: str, topic: str) -> None:
    assert not filter_matches(topic_filter, topic)


@pytest.mark.parametrize("cls", list(REGISTRY.values()), ids=list(REGISTRY))
def test_each_event_is_caught_by_its_own_filter_and_matches_its_own_template(
    cls: type[Event],
) -> None:
    event = an_example(cls)
    topic = event.resolved_topic()

    assert filter_matches(to_filter(cls.topic), topic)
    assert filter_matches(
        to_filter(cls.topic, root=topics.DEFAULT_ROOT, **event.topic_values()), topic
    )
    assert match(cls.topic, topic) == event.topic_values()


def test_templates_overlap_only_where_a_command_filter_also_catches_the_replies() -> None:
    """Test that `cmd/+` catching `cmd/reply` is the only overlap; decode tells them apart."""
    templates = {cls.topic for cls in REGISTRY.values()}
    overlaps = set()
    for cls in REGISTRY.values():
        topic = an_example(cls).resolved_topic()
        overlaps |= {
            (t, cls.topic) for t in templates - {cls.topic} if filter_matches(to_filter(t), topic)
        }

    assert overlaps == {("drones/{drone_id}/cmd/{command}", "drones/{drone_id}/cmd/reply")}
