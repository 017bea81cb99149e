"""What a chaos run must not break, checked on the trace an independent subscriber recorded.

Pure functions over data: the trace (every message the recorder received, redeliveries
included, in the order it received them), the final retained statuses, and what each component
committed to its SQLite inbox. docs/reliability.md explains each rule.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts import Envelope
from contracts.events import (
    DeliveryStatusChanged,
    Event,
    JobAccepted,
    JobCancelled,
    JobFailed,
    JobSucceeded,
    TelemetryReported,
)
from contracts.states import TERMINAL_STAGES, DeliveryStage
from contracts.topics import filter_matches

Recorded = tuple[str, Envelope[Any]]  # topic, event


@dataclass(frozen=True)
class Consumer:
    """What one component subscribes to and what it committed as handled or dead-lettered."""

    name: str
    subscriptions: Mapping[type[Event], str]  # `Bus.subscriptions`
    handled: frozenset[tuple[str, str]]  # (source, event id) of its inbox
    dead_lettered: frozenset[str] = frozenset()  # event ids


@dataclass
class Verdict:
    """Every broken rule, one line each; empty when the run kept every promise."""

    unfinished: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    delivered_twice: list[str] = field(default_factory=list)
    two_jobs: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """All broken rules, each prefixed with its rule."""
        return [f"{rule}: {line}" for rule, lines in vars(self).items() for line in lines]


def first_seen(trace: Iterable[Recorded]) -> list[Recorded]:
    """The trace without redeliveries: each event once, where it was first received."""
    seen: set[tuple[str, str]] = set()
    once = []
    for topic, envelope in trace:
        key = (envelope.source, envelope.id)
        if key not in seen:
            seen.add(key)
            once.append((topic, envelope))
    return once


def verdict(
    trace: list[Recorded],
    *,
    requested: Iterable[str],
    final_stages: Mapping[str, DeliveryStage],
    consumers: Iterable[Consumer],
) -> Verdict:
    """Check a finished run (see the module docstring)."""
    events = first_seen(trace)
    result = Verdict()
    result.unfinished = _unfinished(requested, final_stages)
    result.reopened = _reopened(events)
    result.delivered_twice = _delivered_twice(events)
    result.two_jobs = _two_jobs(events)
    result.lost = [line for consumer in consumers for line in lost(events, consumer)]
    result.dead_letters = [
        f"{topic}: {e.data.reason} {e.data.detail[:120]}"
        for topic, e in events
        if e.type == "murmur.dead_letter.v1"
    ]
    return result


def _unfinished(requested: Iterable[str], final_stages: Mapping[str, DeliveryStage]) -> list[str]:
    return [
        f"{delivery_id} ended {final_stages.get(delivery_id, 'without a status')}"
        for delivery_id in requested
        if final_stages.get(delivery_id) not in TERMINAL_STAGES
    ]


def _reopened(events: list[Recorded]) -> list[str]:
    """A terminal status followed by another stage: the client was told two endings."""
    ended: dict[str, DeliveryStage] = {}
    problems = []
    for _, e in events:
        if not isinstance(e.data, DeliveryStatusChanged):
            continue
        status = e.data
        before = ended.get(status.delivery_id)
        if before is not None and status.stage != before:
            problems.append(f"{status.delivery_id}: {before} then {status.stage}")
        if status.stage in TERMINAL_STAGES:
            ended.setdefault(status.delivery_id, status.stage)
    return problems


def _delivered_twice(events: list[Recorded]) -> list[str]:
    """Two jobs succeeding for one delivery, or two distinct Delivered statuses."""
    jobs: dict[str, set[str]] = defaultdict(set)
    statuses: dict[str, int] = defaultdict(int)
    for _, e in events:
        if isinstance(e.data, JobSucceeded):
            jobs[e.data.delivery_id].add(e.data.job_id)
        elif isinstance(e.data, DeliveryStatusChanged) and e.data.stage is DeliveryStage.DELIVERED:
            statuses[e.data.delivery_id] += 1
    twice = {d: f"jobs {sorted(j)} succeeded" for d, j in jobs.items() if len(j) > 1}
    twice |= {d: f"{n} Delivered statuses" for d, n in statuses.items() if n > 1}
    return [f"{delivery_id}: {why}" for delivery_id, why in sorted(twice.items())]


def _two_jobs(events: list[Recorded]) -> list[str]:
    """A drone accepting a job while another of its jobs is still open.

    A job opens when its drone accepts it and closes when the drone reports it succeeded or
    failed, or when the scheduler cancels it. Each drone's own updates come in its order, and a
    cancellation reaches the broker before the offer the drone could accept after it.
    """
    open_job: dict[str, str] = {}
    problems = []
    for _, e in events:
        data = e.data
        if isinstance(data, JobAccepted):
            holding = open_job.get(data.drone_id)
            if holding is not None and holding != data.job_id:
                problems.append(f"{data.drone_id} accepted {data.job_id} holding {holding}")
            open_job[data.drone_id] = data.job_id
        elif (
            isinstance(data, JobSucceeded | JobFailed | JobCancelled)
            and open_job.get(data.drone_id) == data.job_id
        ):
            del open_job[data.drone_id]
    return problems


def lost(events: list[Recorded], consumer: Consumer) -> list[str]:
    """Events on the consumer's subscriptions that it never committed as handled.

    Telemetry is QoS 0 (fire and forget) and is left out; everything else is QoS 1 and must
    reach every subscriber, across kills and restarts, exactly as the recorder saw it.
    """
    missing = []
    for topic, e in events:
        kind = type(e.data)
        if kind is TelemetryReported or kind not in consumer.subscriptions:
            continue
        if not filter_matches(consumer.subscriptions[kind], topic):
            continue
        if (e.source, e.id) not in consumer.handled and e.id not in consumer.dead_lettered:
            missing.append(f"{consumer.name} never handled {e.type} {e.id} on {topic}")
    return missing
