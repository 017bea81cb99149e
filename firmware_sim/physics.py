"""Point-mass kinematics of a multicopter in a local east-north-up frame centred on home.

Pure and cheap: a step is a handful of float operations, so a thousand vehicles tick in
milliseconds. Horizontal and vertical channels are independent, each limited in speed and
acceleration, and each slows on a `sqrt(2·a·d)` profile so it stops on its setpoint.
"""

import math
from dataclasses import dataclass

from flight_model.airframe import Airframe
from flight_model.phases import FlightPhase

_EPS_M = 1e-6


@dataclass(frozen=True, slots=True)
class Motion:
    """Position (metres from home; `up` above it) and velocity (m/s) of the vehicle."""

    east: float = 0.0
    north: float = 0.0
    up: float = 0.0
    v_east: float = 0.0
    v_north: float = 0.0
    v_up: float = 0.0

    @property
    def ground_speed_mps(self) -> float:
        """Horizontal speed."""
        return math.hypot(self.v_east, self.v_north)

    @property
    def on_ground(self) -> bool:
        """Whether the vehicle sits on the ground (it cannot go below home's level)."""
        return self.up <= 0.0


@dataclass(frozen=True, slots=True)
class Setpoint:
    """Where the controller steers; `None` on a channel means "brake to a stop there".

    Attributes:
        landing: descend to the ground without braking, slowing to the airframe's land speed
            below `land_slow_below_m`; `up` is then ignored.
        emergency: when landing, descend at the emergency speed above the slow zone.
    """

    east: float | None = None
    north: float | None = None
    up: float | None = None
    landing: bool = False
    emergency: bool = False


HOLD_HERE = Setpoint()


def step(motion: Motion, setpoint: Setpoint, airframe: Airframe, dt: float) -> Motion:
    """Advance `motion` by `dt` seconds toward `setpoint` within the airframe's limits."""
    east, north, v_east, v_north = _horizontal(motion, setpoint, airframe, dt)
    up, v_up = _vertical(motion, setpoint, airframe, dt)
    return Motion(east, north, up, v_east, v_north, v_up)


def stopping_distance_m(speed_mps: float, acceleration_mps2: float) -> float:
    """Distance needed to brake from `speed_mps` to rest."""
    return speed_mps * speed_mps / (2.0 * acceleration_mps2)


def power_phase(motion: Motion, *, armed: bool) -> FlightPhase:
    """The phase whose power the vehicle draws, judged by how it moves rather than its mode.

    The estimate in `EnergyModel.leg_wh` prices climbs, cruise and descents the same way, so
    the simulated drain and the scheduler's estimate agree.
    """
    if not armed:
        return FlightPhase.DISARMED
    if motion.on_ground and motion.v_up <= 0.0:
        return FlightPhase.ARMED
    if motion.v_up > 0.2:  # noqa: PLR2004 - below this a climb is only altitude keeping
        return FlightPhase.TAKEOFF
    if motion.v_up < -0.2:  # noqa: PLR2004
        return FlightPhase.LAND
    if motion.ground_speed_mps > 1.0:
        return FlightPhase.CRUISE
    return FlightPhase.HOLD


def _horizontal(
    m: Motion, sp: Setpoint, airframe: Airframe, dt: float
) -> tuple[float, float, float, float]:
    accel = airframe.acceleration_mps2
    dx = dy = distance = 0.0
    want_east = want_north = 0.0
    if sp.east is not None and sp.north is not None:
        dx, dy = sp.east - m.east, sp.north - m.north
        distance = math.hypot(dx, dy)
        if distance > _EPS_M:
            speed = min(airframe.cruise_speed_mps, math.sqrt(2.0 * accel * distance))
            want_east, want_north = dx / distance * speed, dy / distance * speed
    error_east, error_north = want_east - m.v_east, want_north - m.v_north
    error = math.hypot(error_east, error_north)
    limit = accel * dt
    if error > limit:
        error_east, error_north = error_east * limit / error, error_north * limit / error
    v_east, v_north = m.v_east + error_east, m.v_north + error_north
    # Reaching or passing the setpoint within this step: stop on it instead of overshooting.
    if (
        sp.east is not None
        and sp.north is not None
        and (distance <= _EPS_M or (v_east * dx + v_north * dy) * dt >= distance * distance)
    ):
        return sp.east, sp.north, 0.0, 0.0
    return m.east + v_east * dt, m.north + v_north * dt, v_east, v_north


def _vertical(m: Motion, sp: Setpoint, airframe: Airframe, dt: float) -> tuple[float, float]:
    accel = airframe.vertical_acceleration_mps2
    dz = 0.0
    if sp.landing:
        descent = (
            airframe.emergency_descent_speed_mps if sp.emergency else airframe.descent_speed_mps
        )
        above_slow_zone = max(0.0, m.up - airframe.land_slow_below_m)
        # No braking at the ground: touch down at land speed, slowing before the slow zone.
        want = -min(descent, airframe.land_speed_mps + math.sqrt(2.0 * accel * above_slow_zone))
    elif sp.up is not None:
        dz = sp.up - m.up
        limit = airframe.climb_speed_mps if dz > 0 else airframe.descent_speed_mps
        want = math.copysign(min(limit, math.sqrt(2.0 * accel * abs(dz))), dz)
    else:
        want = 0.0
    change = max(-accel * dt, min(accel * dt, want - m.v_up))
    v_up = m.v_up + change
    up = m.up + v_up * dt
    if up <= 0.0 and (sp.landing or v_up < 0.0):
        return 0.0, 0.0  # touchdown: the ground stops the vehicle
    if sp.up is not None and not sp.landing and (abs(dz) <= _EPS_M or v_up * dt * dz >= dz * dz):
        return sp.up, 0.0
    return up, v_up
