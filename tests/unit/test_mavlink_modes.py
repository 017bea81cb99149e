from dataclasses import replace
from enum import Enum

import pytest
from pymavlink.dialects.v20 import common as mavlink

from firmware_sim.failures import Failure
from firmware_sim.mavlink import protocol
from firmware_sim.mavlink.modes import (
    custom_mode,
    failsafe_text,
    landed_state,
    phase_for_mode,
    px4_status,
    system_status,
)
from firmware_sim.mavlink.protocol import (
    LandedState,
    MavState,
    ModeFlag,
    Px4AutoMode,
    Severity,
)
from firmware_sim.state import VehicleState
from flight_model.phases import FlightPhase
from tests.builders import HOME
from tests.flights import a_hovering_vehicle, a_sim_vehicle, east_of, fly_until

# Our enum → the prefix of its values' names in pymavlink's generated common dialect.
PREFIXES: dict[type[Enum], str] = {
    protocol.MavType: "MAV_TYPE_",
    protocol.MavAutopilot: "MAV_AUTOPILOT_",
    protocol.ModeFlag: "MAV_MODE_FLAG_",
    protocol.MavState: "MAV_STATE_",
    protocol.LandedState: "MAV_LANDED_STATE_",
    protocol.Severity: "MAV_SEVERITY_",
    protocol.MavResult: "MAV_RESULT_",
    protocol.MissionResult: "MAV_MISSION_",
    protocol.MissionType: "MAV_MISSION_TYPE_",
    protocol.MissionState: "MISSION_STATE_",
    protocol.Frame: "MAV_FRAME_",
    protocol.Cmd: "MAV_CMD_",
    protocol.GripperAction: "GRIPPER_ACTION_",
    protocol.BatteryChargeState: "MAV_BATTERY_CHARGE_STATE_",
    protocol.MsgId: "MAVLINK_MSG_ID_",
}


@pytest.mark.parametrize("enum", list(PREFIXES), ids=lambda e: e.__name__)
def test_our_mavlink_numbers_are_those_of_the_common_dialect(enum: type[Enum]) -> None:
    for member in enum:
        assert getattr(mavlink, PREFIXES[enum] + member.name) == member.value, member


def test_the_component_ids_are_those_of_the_common_dialect() -> None:
    assert protocol.AUTOPILOT_COMPONENT == mavlink.MAV_COMP_ID_AUTOPILOT1
    assert protocol.ONBOARD_COMPUTER_COMPONENT == mavlink.MAV_COMP_ID_ONBOARD_COMPUTER


def test_px4_custom_mode_puts_the_main_mode_in_bits_16_and_the_sub_mode_in_bits_24() -> None:
    assert custom_mode(Px4AutoMode.LOITER) == (4 << 16) | (3 << 24)
    assert px4_status(a_sim_vehicle().state()).sub_mode is Px4AutoMode.LOITER


def a_state(phase: FlightPhase, **changes: object) -> VehicleState:
    """A state of a vehicle at HOME, in `phase`, armed and airborne unless said otherwise."""
    on_ground = phase in {FlightPhase.DISARMED, FlightPhase.ARMED}
    state = a_sim_vehicle().state()
    away = east_of(HOME, 500.0)
    defaults: dict[str, object] = {
        "phase": phase,
        "armed": phase is not FlightPhase.DISARMED,
        "landed": on_ground,
        "position": state.position if on_ground else away.model_copy(update={"altitude_m": 40.0}),
    }
    return replace(state, **{**defaults, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phase", "mode", "landed", "status"),
    [
        (FlightPhase.DISARMED, Px4AutoMode.LOITER, LandedState.ON_GROUND, MavState.STANDBY),
        (FlightPhase.ARMED, Px4AutoMode.LOITER, LandedState.ON_GROUND, MavState.ACTIVE),
        (FlightPhase.TAKEOFF, Px4AutoMode.TAKEOFF, LandedState.TAKEOFF, MavState.ACTIVE),
        (FlightPhase.CRUISE, Px4AutoMode.LOITER, LandedState.IN_AIR, MavState.ACTIVE),
        (FlightPhase.HOLD, Px4AutoMode.LOITER, LandedState.IN_AIR, MavState.ACTIVE),
        (FlightPhase.LAND, Px4AutoMode.LAND, LandedState.LANDING, MavState.ACTIVE),
        (FlightPhase.EMERGENCY_LAND, Px4AutoMode.LAND, LandedState.LANDING, MavState.EMERGENCY),
        (FlightPhase.RTL, Px4AutoMode.RTL, LandedState.IN_AIR, MavState.ACTIVE),
    ],
)
def test_each_phase_maps_to_the_px4_mode_of_the_spec_table(
    phase: FlightPhase, mode: Px4AutoMode, landed: LandedState, status: MavState
) -> None:
    result = px4_status(a_state(phase))
    assert (result.sub_mode, result.landed_state, result.system_status) == (mode, landed, status)
    assert result.base_mode & ModeFlag.CUSTOM_MODE_ENABLED


def test_the_armed_flag_is_the_safety_armed_bit() -> None:
    assert not px4_status(a_state(FlightPhase.DISARMED)).base_mode & ModeFlag.SAFETY_ARMED
    assert px4_status(a_state(FlightPhase.ARMED)).base_mode & ModeFlag.SAFETY_ARMED
    assert px4_status(a_state(FlightPhase.HOLD)).base_mode == 29 | 128  # PX4's AUTO, armed


def test_a_mission_flies_in_auto_mission_whatever_the_phase() -> None:
    for phase in (FlightPhase.TAKEOFF, FlightPhase.CRUISE, FlightPhase.LAND):
        status = px4_status(a_state(phase), mission_active=True)
        assert status.sub_mode is Px4AutoMode.MISSION
    # landed_state still follows the item flown: a mission's take-off and landing are seen.
    assert px4_status(a_state(FlightPhase.LAND), mission_active=True).landed_state is (
        LandedState.LANDING
    )


def test_a_return_over_home_is_landing_and_a_goto_from_the_ground_is_taking_off() -> None:
    over_home = a_state(FlightPhase.RTL, position=HOME.model_copy(update={"altitude_m": 30.0}))
    assert landed_state(over_home) is LandedState.LANDING
    assert landed_state(a_state(FlightPhase.RTL)) is LandedState.IN_AIR
    leaving = a_state(FlightPhase.CRUISE, landed=True, position=HOME)
    assert landed_state(leaving) is LandedState.TAKEOFF


@pytest.mark.parametrize(
    ("failure", "status", "severity", "text"),
    [
        (Failure("battery", "drop", value=15.0), MavState.CRITICAL, Severity.CRITICAL,
         "failsafe_battery: battery_low"),
        (Failure("battery", "drop", value=5.0), MavState.EMERGENCY, Severity.EMERGENCY,
         "failsafe_battery: battery_critical"),
        (Failure("gps", "off"), MavState.CRITICAL, Severity.CRITICAL, "failsafe_gps: gps"),
        (Failure("motor", "off"), MavState.EMERGENCY, Severity.EMERGENCY, "failsafe_motor: motor"),
        (Failure("companion_link", "off"), MavState.CRITICAL, Severity.CRITICAL,
         "failsafe_link: companion_link"),
    ],
)  # fmt: skip
def test_a_failsafe_raises_the_status_and_is_named_in_its_statustext(
    failure: Failure, status: MavState, severity: Severity, text: str
) -> None:
    vehicle = a_hovering_vehicle()
    assert failsafe_text(vehicle.state()) is None
    vehicle.inject(failure)
    fly_until(vehicle, text.partition(":")[0], limit_s=60.0)  # the failsafe's event
    state = vehicle.state()
    assert system_status(state) is status
    named = failsafe_text(state)
    assert named is not None
    assert (named.severity, named.text) == (severity, text)


def test_a_grounded_gps_failure_is_critical_even_disarmed() -> None:
    vehicle = a_sim_vehicle()
    vehicle.inject(Failure("gps", "off"))
    vehicle.step(0.5)
    state = vehicle.state()
    assert (system_status(state), state.armed) == (MavState.CRITICAL, False)


@pytest.mark.parametrize(
    ("sub", "what"),
    [(3, "hold"), (5, "rtl"), (6, "land"), (4, "mission"), (2, "takeoff"), (1, None), (9, None)],
)
def test_set_mode_understands_the_auto_modes_the_simulator_flies(
    sub: int, what: str | None
) -> None:
    assert phase_for_mode(sub) == what
