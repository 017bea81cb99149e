"""Failure injection: what breaks, when, drawn from a seeded RNG so every run repeats.

The vocabulary follows PX4's `failure <component> <type>` (MAV_CMD_INJECT_FAILURE), cut to
what a delivery fleet must survive, plus a battery drain multiplier and a sudden drop.

Time `at_s` counts the vehicle's *armed* seconds, summed over all its flights (an hour meter):
a failure never fires while a drone waits on the pad for a job, and on a first flight it is
simply the seconds since arming. This keeps a plan meaningful however long the cloud takes to
hand out jobs.
"""

import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from flight_model.phases import FlightPhase

Component = Literal["battery", "gps", "motor", "companion_link"]
Kind = Literal["drop", "drain", "off", "ok"]

# Which kinds each component supports; PX4 answers other pairs UNSUPPORTED.
SUPPORTED: dict[str, frozenset[str]] = {
    "battery": frozenset({"drop", "drain"}),
    "gps": frozenset({"off", "ok"}),
    "motor": frozenset({"off"}),
    "companion_link": frozenset({"off", "ok"}),
}


@dataclass(frozen=True, slots=True)
class Failure:
    """One injected fault.

    Attributes:
        component: what breaks.
        kind: battery "drop" (to `value` percent) or "drain" (`value` times faster); gps,
            motor and companion_link "off"; gps and companion_link "ok" to restore.
        at_s: armed seconds after which it fires (see the module docstring).
        at_phase: fires on the first step spent in this phase (after `at_s` if both are set).
        value: the percent of a drop or the multiplier of a drain.
    """

    component: Component
    kind: Kind
    at_s: float | None = None
    at_phase: FlightPhase | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SUPPORTED.get(self.component, frozenset()):
            raise ValueError(f"Unsupported failure: {self.component} {self.kind}")
        if self.component == "battery" and self.value is None:
            raise ValueError(f"battery {self.kind} needs a value")

    def __str__(self) -> str:
        value = "" if self.value is None else f" {self.value:g}"
        return f"{self.component} {self.kind}{value}"

    def is_due(self, armed_s: float, phase: FlightPhase) -> bool:
        """Whether the trigger conditions hold now."""
        if self.at_s is not None and armed_s < self.at_s:
            return False
        return self.at_phase is None or phase is self.at_phase

    def to_dict(self) -> dict[str, Any]:
        """The failure as JSON-able data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Failure":
        """Rebuild a failure saved by `to_dict`."""
        phase = data.get("at_phase")
        return cls(
            component=data["component"],
            kind=data["kind"],
            at_s=data.get("at_s"),
            at_phase=None if phase is None else FlightPhase(phase),
            value=data.get("value"),
        )


class FailurePlan:
    """A schedule of failures for one vehicle; each fires once.

    Args:
        failures: the schedule.
        seed: the RNG seed the plan was drawn with (kept for the record and snapshots).
    """

    def __init__(self, failures: Iterable[Failure] = (), *, seed: int = 0) -> None:
        self.failures: tuple[Failure, ...] = tuple(failures)
        self.seed = seed
        self._fired = [False] * len(self.failures)

    @property
    def pending(self) -> tuple[Failure, ...]:
        """Failures not yet fired."""
        return tuple(f for f, fired in zip(self.failures, self._fired, strict=True) if not fired)

    def due(self, now_s: float, phase: FlightPhase) -> list[Failure]:
        """Failures firing now, in plan order; each is returned only once.

        Args:
            now_s: the vehicle's armed seconds so far.
            phase: the vehicle's phase now.
        """
        fired: list[Failure] = []
        for i, failure in enumerate(self.failures):
            if not self._fired[i] and failure.is_due(now_s, phase):
                self._fired[i] = True
                fired.append(failure)
        return fired

    @classmethod
    def random(
        cls,
        seed: int,
        *,
        rate_per_hour: float = 1.0,
        horizon_s: float = 3600.0,
        components: Sequence[Component] = ("battery", "gps", "motor", "companion_link"),
    ) -> "FailurePlan":
        """Draw failures as a Poisson process over `horizon_s` armed seconds.

        Args:
            seed: same seed, same plan.
            rate_per_hour: mean failures per armed hour.
            horizon_s: armed time covered by the plan.
            components: what may fail, each equally likely.
        """
        rng = random.Random(seed)  # noqa: S311 - reproducible draws, not secrets
        failures: list[Failure] = []
        at_s = 0.0
        while rate_per_hour > 0:
            at_s += rng.expovariate(rate_per_hour / 3600.0)
            if at_s > horizon_s:
                break
            failures.append(_draw(rng, rng.choice(components), round(at_s, 3)))
        return cls(failures, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """The plan and which failures already fired, as JSON-able data."""
        return {
            "seed": self.seed,
            "failures": [f.to_dict() for f in self.failures],
            "fired": list(self._fired),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FailurePlan":
        """Rebuild a plan saved by `to_dict`."""
        plan = cls((Failure.from_dict(f) for f in data["failures"]), seed=data["seed"])
        plan._fired = [bool(f) for f in data["fired"]]
        return plan


def _draw(rng: random.Random, component: Component, at_s: float) -> Failure:
    if component == "battery":
        if rng.random() < 0.5:  # noqa: PLR2004 - drops and drains equally likely
            return Failure("battery", "drop", at_s=at_s, value=round(rng.uniform(5.0, 30.0), 1))
        return Failure("battery", "drain", at_s=at_s, value=round(rng.uniform(2.0, 5.0), 1))
    return Failure(component, "off", at_s=at_s)
