"""The people at the pads: they swap the battery of a drone that landed at home.

Without them a simulated fleet runs dry after a few jobs. A swap takes `swap_s` of
simulated time, starts once the vehicle stands on the ground within `pad_radius_m` of its
home with less than `swap_below_pct` left, and is abandoned if it takes off meanwhile.
Simulated vehicles stay armed after touching down (no auto-disarm), so the crew does not
wait for a disarm as it would next to a PX4 that disarmed itself.
"""

import math
from dataclasses import dataclass, field

from firmware_sim.state import SimEvent
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock


@dataclass
class GroundCrew:
    """A tick listener for `Simulator.on_tick`."""

    clock: Clock
    swap_below_pct: float = 90.0
    swap_s: float = 120.0
    pad_radius_m: float = 10.0
    _since: dict[str, float] = field(default_factory=dict)

    def __call__(self, vehicle: SimVehicle, _: list[SimEvent]) -> None:
        """Start, continue or finish a swap for `vehicle` after its step."""
        # Read off the flight itself, not `vehicle.state()`: this runs after every step of
        # every vehicle, and a whole report per step was a third of the simulator's time.
        motion = vehicle.flight.motion  # metres from home, which is the frame's origin
        on_pad = motion.on_ground and math.hypot(motion.east, motion.north) <= self.pad_radius_m
        if not on_pad or vehicle.battery.percent >= self.swap_below_pct:
            self._since.pop(vehicle.vehicle_id, None)
            return
        started = self._since.setdefault(vehicle.vehicle_id, self.clock.monotonic())
        if self.clock.monotonic() - started >= self.swap_s:
            vehicle.battery.recharge()
            self._since.pop(vehicle.vehicle_id, None)
