"""The flight phases of a multicopter, PX4-flavoured: what its power draw depends on."""

from enum import StrEnum


class FlightPhase(StrEnum):
    """What the flight controller is doing: its flight mode, PX4-flavoured."""

    DISARMED = "disarmed"
    ARMED = "armed"  # on the ground, motors spinning
    TAKEOFF = "takeoff"  # vertical climb to an altitude, then HOLD
    CRUISE = "cruise"  # to a target: first to its altitude, then horizontally, then HOLD
    HOLD = "hold"  # hover where it stops
    LAND = "land"  # vertical descent, then ARMED on the ground
    RTL = "rtl"  # climb to the return altitude, fly home, land
    EMERGENCY_LAND = "emergency_land"  # land where it is, descending faster
