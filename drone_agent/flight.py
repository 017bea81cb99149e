"""The port to a flight controller: commands in, normalised vehicle states out.

Shaped after MAVLink: a command returns once the flight controller acknowledged it (or
raises with its reason), not when the vehicle got there; progress is read from the state
stream. The simulator adapter and the MAVLink adapter both implement `FlightController`.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from contracts.ids import Location


class FlightCommandError(RuntimeError):
    """The flight controller refused a command; `reason` is its word for why."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"flight controller refused {command}: {reason}")
        self.command = command
        self.reason = reason


class FailsafeError(RuntimeError):
    """A failsafe took over while the agent waited for the vehicle."""

    def __init__(self, failsafe: str) -> None:
        super().__init__(f"failsafe: {failsafe}")
        self.failsafe = failsafe


@dataclass(frozen=True)
class VehicleState:
    """What the agent knows of its vehicle, whatever the flight controller."""

    position: Location  # altitude_m is height above home
    home: Location
    phase: str
    armed: bool
    landed: bool
    ground_speed_mps: float
    climb_rate_mps: float
    heading_deg: float
    battery_pct: float
    energy_wh: float
    gps_ok: bool
    payload_kg: float
    failsafe: str | None
    eta_s: float | None
    link_ok: bool = True  # the companion computer hears the flight controller


class FlightController(Protocol):
    """Commands a vehicle and reports its state."""

    ready: asyncio.Event
    """Set once `state()` describes the vehicle (a link may take a moment to tell)."""

    async def run(self) -> None:
        """Keep the link to the flight controller up, until cancelled."""

    async def arm(self) -> None:
        """Arm the motors on the ground."""

    async def takeoff(self, altitude_m: float) -> None:
        """Climb vertically to `altitude_m` above home."""

    async def goto(self, target: Location) -> None:
        """Fly at cruise altitude to above `target`."""

    async def hold(self) -> None:
        """Hover where it is."""

    async def resume(self) -> None:
        """Continue to the last goto target after a hold."""

    async def return_home(self) -> None:
        """Return to launch and land."""

    async def land(self) -> None:
        """Land where it is."""

    async def load_payload(self, kg: float) -> None:
        """Take a package on board (on the ground)."""

    async def release_payload(self) -> None:
        """Release the package."""

    def state(self) -> VehicleState:
        """The latest state."""
        ...

    async def wait_until(
        self, predicate: Callable[[VehicleState], bool], *, timeout_s: float | None = None
    ) -> VehicleState:
        """Wait for a state that satisfies `predicate`.

        Raises:
            FailsafeError: a failsafe became active first.
            TimeoutError: `timeout_s` simulated seconds passed first.
        """
        ...
