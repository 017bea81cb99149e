"""A simulated flight controller: pure, deterministic, PX4-flavoured (field notes §9)."""

from firmware_sim.airframe import Airframe
from firmware_sim.battery import Battery, lipo_cell_voltage
from firmware_sim.clock import Clock, ManualClock, ScaledClock
from firmware_sim.energy import EnergyModel
from firmware_sim.failsafes import FailsafeAction, FailsafeConfig
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.geo import EARTH_RADIUS_M, bearing_deg, from_enu, haversine_m, to_enu
from firmware_sim.physics import FlightPhase
from firmware_sim.simulator import Simulator, TickListener
from firmware_sim.state import CommandAck, SimEvent, SimEventKind, VehicleState
from firmware_sim.vehicle import SimVehicle

__all__ = [
    "EARTH_RADIUS_M",
    "Airframe",
    "Battery",
    "Clock",
    "CommandAck",
    "EnergyModel",
    "FailsafeAction",
    "FailsafeConfig",
    "Failure",
    "FailurePlan",
    "FlightPhase",
    "ManualClock",
    "ScaledClock",
    "SimEvent",
    "SimEventKind",
    "SimVehicle",
    "Simulator",
    "TickListener",
    "VehicleState",
    "bearing_deg",
    "from_enu",
    "haversine_m",
    "lipo_cell_voltage",
    "to_enu",
]
