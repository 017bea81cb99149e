"""A simulated flight controller: pure, deterministic, PX4-flavoured (field notes §9).

The clock, geometry, airframe and energy model it flies by are `flight_model`'s, shared with the
cloud and the agent.
"""

from firmware_sim.battery import Battery, lipo_cell_voltage
from firmware_sim.failsafes import FailsafeAction, FailsafeConfig
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.simulator import Simulator, TickListener
from firmware_sim.state import CommandAck, SimEvent, SimEventKind, VehicleState
from firmware_sim.vehicle import SimVehicle

__all__ = [
    "Battery",
    "CommandAck",
    "FailsafeAction",
    "FailsafeConfig",
    "Failure",
    "FailurePlan",
    "SimEvent",
    "SimEventKind",
    "SimVehicle",
    "Simulator",
    "TickListener",
    "VehicleState",
    "lipo_cell_voltage",
]
