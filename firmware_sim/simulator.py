"""One loop that steps every simulated vehicle on a shared clock.

A single task for the whole fleet: per vehicle and tick it costs a few float updates, so a
thousand drones at 1 Hz take milliseconds; the MQTT side is the bottleneck, not this.
"""

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

from firmware_sim.state import SimEvent
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock

TickListener = Callable[[SimVehicle, list[SimEvent]], None]
MAX_STEP_S = 1.0
MAX_STEPS_PER_ROUND = 20  # bounds the work of one round when the loop is far behind


class Simulator:
    """Steps its vehicles every `tick_s` simulated seconds and tells listeners what happened.

    Args:
        clock: the shared clock; the loop sleeps on it.
        tick_s: simulated seconds between steps.
    """

    def __init__(self, clock: Clock, *, tick_s: float = 0.5) -> None:
        if tick_s <= 0:
            raise ValueError(f"tick_s must be positive, got {tick_s}")
        self.clock = clock
        self.tick_s = tick_s
        self._vehicles: dict[str, SimVehicle] = {}
        self._listeners: list[TickListener] = []
        self._own_listeners: dict[str, list[TickListener]] = {}

    @property
    def vehicles(self) -> Mapping[str, SimVehicle]:
        """The vehicles by id (a read-only view)."""
        return MappingProxyType(self._vehicles)

    def add(self, vehicle: SimVehicle) -> None:
        """Fly `vehicle` from the next tick on."""
        if vehicle.vehicle_id in self._vehicles:
            raise ValueError(f"Vehicle {vehicle.vehicle_id} is already simulated")
        self._vehicles[vehicle.vehicle_id] = vehicle

    def remove(self, vehicle_id: str) -> SimVehicle:
        """Stop simulating a vehicle and hand it back (say, to snapshot it)."""
        return self._vehicles.pop(vehicle_id)

    def on_tick(self, callback: TickListener, *, vehicle_id: str | None = None) -> None:
        """Call `callback(vehicle, events)` after each step of every vehicle, events or not.

        Args:
            callback: the listener.
            vehicle_id: only for this vehicle; a thousand agents each listening to their own
                drone then cost a thousand calls per tick, not a million.
        """
        if vehicle_id is None:
            self._listeners.append(callback)
        else:
            self._own_listeners.setdefault(vehicle_id, []).append(callback)

    def step(self, dt: float) -> None:
        """Step every vehicle by `dt` seconds, then call the listeners; the loop's body."""
        for vehicle in list(self._vehicles.values()):  # a listener may add or remove vehicles
            events = vehicle.step(dt)
            for listener in self._own_listeners.get(vehicle.vehicle_id, ()):
                listener(vehicle, events)
            for listener in self._listeners:
                listener(vehicle, events)

    async def run(self) -> None:
        """Step on the clock until cancelled; a listener's exception ends the loop.

        Each round covers the simulated time that really passed since the last one, so a
        loop that falls behind (a busy event loop, a high speed-up) never slows the vehicles
        relative to the clock. A long round is cut into steps of at most `MAX_STEP_S`, with the
        listeners (the flight controllers' companions) heard after each: a stall of the shared
        event loop is not a silent companion, which would trip the link failsafe.
        """
        last = self.clock.monotonic()
        deadline = last
        while True:
            deadline += self.tick_s
            await self.clock.sleep(deadline - self.clock.monotonic())
            now = self.clock.monotonic()
            if now > deadline + self.tick_s:
                deadline = now  # far behind: start a fresh cadence instead of bursting
            if now > last:
                elapsed = now - last
                steps = min(MAX_STEPS_PER_ROUND, math.ceil(elapsed / MAX_STEP_S))
                for _ in range(steps):
                    self.step(elapsed / steps)
                last = now
