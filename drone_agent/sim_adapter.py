"""`FlightController` over a `firmware_sim` vehicle, stepped by the shared `Simulator`."""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contracts.ids import Location
from drone_agent.flight import FailsafeError, FlightCommandError, VehicleState
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import CommandAck, SimEvent, SimVehicle
from flight_model.clock import Clock


@dataclass
class _Waiter:
    predicate: Callable[[VehicleState], bool]
    future: asyncio.Future[VehicleState]
    failsafe_at_start: str | None
    deadline: float | None


class SimFlightController:
    """Commands go to the simulated vehicle at once; states come with each simulator tick.

    With `snapshot`, the vehicle is written there after every tick and restored from it at
    start: a real flight controller keeps flying while the companion computer restarts.
    """

    def __init__(self, vehicle: SimVehicle, clock: Clock, *, snapshot: Path | None = None) -> None:
        self.vehicle = vehicle
        self._clock = clock
        self._snapshot = snapshot
        self._state: VehicleState | None = _normalise(vehicle)
        self._waiters: list[_Waiter] = []
        self.ready = asyncio.Event()
        self.ready.set()  # the vehicle is right here

    @classmethod
    def restore_or_create(
        cls, snapshot: Path, clock: Clock, create: Callable[[], SimVehicle]
    ) -> "SimFlightController":
        """Resume the vehicle from its snapshot if there is one."""
        if snapshot.exists():
            vehicle = SimVehicle.from_dict(json.loads(snapshot.read_text()))
        else:
            vehicle = create()
        return cls(vehicle, clock, snapshot=snapshot)

    def tick(self, _: list[SimEvent]) -> None:
        """Take the vehicle's new state; wake whoever waits for it."""
        self.vehicle.companion_heartbeat(self._clock.monotonic())
        # The report is built only when someone reads it: this runs after every step of every
        # vehicle, and most steps of an idle or cruising drone are never looked at.
        self._state = None
        if self._waiters:
            self._wake(self.state())
        if self._snapshot is not None:
            tmp = self._snapshot.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.vehicle.to_dict()))
            tmp.replace(self._snapshot)

    def _wake(self, state: VehicleState) -> None:
        now = self._clock.monotonic()
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._waiters.remove(waiter)
            elif state.failsafe is not None and state.failsafe != waiter.failsafe_at_start:
                waiter.future.set_exception(FailsafeError(state.failsafe))
            elif waiter.predicate(state):
                waiter.future.set_result(state)
            elif waiter.deadline is not None and now > waiter.deadline:
                waiter.future.set_exception(TimeoutError())

    async def run(self) -> None:
        """Nothing to keep up: the simulator ticks the vehicle. Returns when cancelled."""
        await asyncio.Event().wait()

    def state(self) -> VehicleState:
        """The state as of the last tick."""
        if self._state is None:
            self._state = _normalise(self.vehicle)
        return self._state

    async def wait_until(
        self, predicate: Callable[[VehicleState], bool], *, timeout_s: float | None = None
    ) -> VehicleState:
        """Wait for a tick whose state satisfies `predicate`."""
        state = self.state()
        if predicate(state):
            return state
        waiter = _Waiter(
            predicate,
            asyncio.get_running_loop().create_future(),
            state.failsafe,
            None if timeout_s is None else self._clock.monotonic() + timeout_s,
        )
        self._waiters.append(waiter)
        try:
            return await waiter.future
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def arm(self) -> None:
        """Arm on the ground."""
        _check("arm", self.vehicle.arm())

    async def takeoff(self, altitude_m: float) -> None:
        """Climb to `altitude_m`."""
        _check("takeoff", self.vehicle.takeoff(altitude_m))

    async def goto(self, target: Location) -> None:
        """Fly at cruise altitude to above `target`."""
        _check("goto", self.vehicle.goto(target))

    async def hold(self) -> None:
        """Hover in place."""
        _check("hold", self.vehicle.hold())

    async def resume(self) -> None:
        """Continue after a hold."""
        _check("resume", self.vehicle.resume())

    async def return_home(self) -> None:
        """Return to launch."""
        _check("return", self.vehicle.return_to_launch())

    async def land(self) -> None:
        """Land here."""
        _check("land", self.vehicle.land())

    async def load_payload(self, kg: float) -> None:
        """Take the package on board."""
        _check("load_payload", self.vehicle.load_payload(kg))

    async def release_payload(self) -> None:
        """Release the package."""
        _check("release_payload", self.vehicle.release_payload())


class TickRouter:
    """One simulator listener for all adapters: a thousand drones cost one lookup each."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._adapters: dict[str, SimFlightController] = {}
        simulator.on_tick(self._dispatch)

    def add(self, adapter: SimFlightController) -> None:
        """Simulate the adapter's vehicle and hand it each tick."""
        self.simulator.add(adapter.vehicle)
        self._adapters[adapter.vehicle.vehicle_id] = adapter

    def _dispatch(self, vehicle: SimVehicle, events: list[SimEvent]) -> None:
        adapter = self._adapters.get(vehicle.vehicle_id)
        if adapter is not None:
            adapter.tick(events)


def _check(command: str, ack: CommandAck | object) -> None:
    if isinstance(ack, CommandAck) and not ack.accepted:
        raise FlightCommandError(command, ack.reason or "denied")


def _normalise(vehicle: SimVehicle) -> VehicleState:
    s = vehicle.state()
    return VehicleState(
        position=s.position,
        home=s.home,
        phase=str(s.phase),
        armed=s.armed,
        landed=s.landed,
        ground_speed_mps=s.ground_speed_mps,
        climb_rate_mps=s.climb_rate_mps,
        heading_deg=s.heading_deg,
        battery_pct=s.battery_pct,
        energy_wh=s.energy_wh,
        gps_ok=s.gps_ok,
        payload_kg=s.payload_kg,
        failsafe=s.failsafe,
        eta_s=s.eta_s,
    )
