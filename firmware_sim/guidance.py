"""Guidance: from a flight phase and its target to a setpoint, arrival checks and an ETA. Pure.

A target is an (east, north, up) point in the vehicle's frame: the take-off altitude above
where it stands, a goto target at its flight altitude, or home at the return altitude.
"""

import math

from firmware_sim.physics import HOLD_HERE, Motion, Setpoint
from flight_model.airframe import Airframe
from flight_model.phases import FlightPhase

Point = tuple[float, float, float]
"""(east, north, up) metres in the vehicle's frame."""

ALTITUDE_TOLERANCE_M = 0.5
"""A cruise starts moving horizontally, and counts as arrived, within this of its altitude."""

TAKEOFF_TOLERANCE_M = 0.1


_LANDINGS = {
    FlightPhase.LAND: Setpoint(landing=True),
    FlightPhase.EMERGENCY_LAND: Setpoint(landing=True, emergency=True),
}


def setpoint(
    phase: FlightPhase, motion: Motion, target: Point | None, airframe: Airframe
) -> Setpoint:
    """Where the controller steers in `phase`; a phase without a target holds where it is.

    A HOLD with a target is the loiter at a reached take-off or goto point: it holds that
    point, as PX4 does after a reposition, rather than braking wherever the arrival found it
    (from cruise speed, with the steps of a busy loop, that was 5 m past the point).
    """
    landing = _LANDINGS.get(phase)
    if landing is not None:
        return landing
    if target is None:
        return HOLD_HERE
    if phase is FlightPhase.HOLD:
        return Setpoint(*target)
    if phase is FlightPhase.TAKEOFF:
        return Setpoint(up=target[2])
    if phase is FlightPhase.RTL:
        return _homeward(motion, target, airframe)
    return _level_flight(motion, target)


def _level_flight(motion: Motion, target: Point) -> Setpoint:
    east, north, up = target
    if abs(motion.up - up) > ALTITUDE_TOLERANCE_M:
        return Setpoint(up=up)  # change altitude first, then fly level
    return Setpoint(east, north, up)


def _homeward(motion: Motion, home: Point, airframe: Airframe) -> Setpoint:
    east, north, up = home
    if math.hypot(east - motion.east, north - motion.north) <= airframe.waypoint_radius_m:
        return Setpoint(east, north, landing=True)  # over home: keep centring while landing
    if motion.up < up - ALTITUDE_TOLERANCE_M:
        return Setpoint(up=up)  # climb first, so the way home clears the obstacles
    return Setpoint(east, north, up)


def reached(phase: FlightPhase, motion: Motion, target: Point | None, airframe: Airframe) -> bool:
    """Whether a TAKEOFF or CRUISE has arrived (within `WPNAV_RADIUS` and at altitude)."""
    if target is None:
        return False
    east, north, up = target
    if phase is FlightPhase.TAKEOFF:
        return abs(motion.up - up) <= TAKEOFF_TOLERANCE_M
    if phase is FlightPhase.CRUISE:
        return (
            abs(motion.up - up) <= ALTITUDE_TOLERANCE_M
            and math.hypot(east - motion.east, north - motion.north) <= airframe.waypoint_radius_m
        )
    return False


def descent_s(height_m: float, airframe: Airframe, *, emergency: bool = False) -> float:
    """Time to land from `height_m`, the last metres at land speed."""
    speed = airframe.emergency_descent_speed_mps if emergency else airframe.descent_speed_mps
    slow = min(max(0.0, height_m), airframe.land_slow_below_m)
    return max(0.0, height_m - slow) / speed + slow / airframe.land_speed_mps


def eta_s(
    phase: FlightPhase, motion: Motion, target: Point | None, airframe: Airframe
) -> float | None:
    """Seconds to the current target: horizontal at cruise speed, vertical at climb or descent.

    Nominal speeds rather than the current ground speed, so the ETA does not explode while
    the vehicle accelerates or stops; at steady cruise they agree.
    """
    if phase is FlightPhase.LAND:
        return descent_s(motion.up, airframe)
    if phase is FlightPhase.EMERGENCY_LAND:
        return descent_s(motion.up, airframe, emergency=True)
    if target is None or phase not in {FlightPhase.TAKEOFF, FlightPhase.CRUISE, FlightPhase.RTL}:
        return None
    east, north, up = target
    horizontal = math.hypot(east - motion.east, north - motion.north)
    if phase is FlightPhase.TAKEOFF:
        horizontal = 0.0
    if phase is FlightPhase.RTL:
        if horizontal <= airframe.waypoint_radius_m:
            return descent_s(motion.up, airframe)
        climb = max(0.0, up - motion.up) / airframe.climb_speed_mps
        return climb + horizontal / airframe.cruise_speed_mps + descent_s(up, airframe)
    dz = up - motion.up
    vertical = dz / airframe.climb_speed_mps if dz > 0 else -dz / airframe.descent_speed_mps
    return vertical + horizontal / airframe.cruise_speed_mps
