"""Folding MAVLink messages into the normalised `VehicleState` (pure), and decoding them."""

import math

import pytest
from pymavlink.dialects.v20 import common as mavlink

from contracts.ids import Location
from drone_agent.mavlink import messages as m
from drone_agent.mavlink.codec import Codec
from drone_agent.mavlink.messages import (
    BatteryStatus,
    ExtendedSysState,
    GlobalPosition,
    GpsRaw,
    Heartbeat,
    HomePosition,
    LandedState,
    Message,
    StatusText,
    SysStatus,
)
from drone_agent.mavlink.state import (
    REBOOT_JUMP_MS,
    UNKNOWN_FAILSAFE,
    FlightMode,
    ModeKind,
    Telemetry,
    decode_mode,
    descent_commanded,
    fold,
    goto_commanded,
    hold_commanded,
    link_lost,
    normalise,
    payload_commanded,
    resume_commanded,
    takeoff_commanded,
)
from flight_model.airframe import Airframe
from flight_model.geo import from_enu, haversine_m

AIRFRAME = Airframe()
HOME = Location(latitude=47.3769, longitude=8.5417)
ARMED = m.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | m.MAV_MODE_FLAG_SAFETY_ARMED
DISARMED = m.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED


def px4(main: int, sub: int = 0) -> int:
    return main << 16 | sub << 24


LOITER, TAKEOFF, MISSION, RTL, LAND = (px4(4, sub) for sub in (3, 2, 4, 5, 6))
POSCTL = px4(3)


def heartbeat(
    mode: int = LOITER,
    *,
    armed: bool = True,
    status: int = m.MAV_STATE_ACTIVE,
    autopilot: int = m.MAV_AUTOPILOT_PX4,
) -> Heartbeat:
    return Heartbeat(2, autopilot, ARMED if armed else DISARMED, mode, status)


def position(
    at: Location,
    *,
    boot_ms: int = 1_000,
    height_m: float = 0.0,
    velocity_cms: tuple[int, int, int] = (0, 0, 0),
    hdg: int = 0,
) -> GlobalPosition:
    vx, vy, vz = velocity_cms
    return GlobalPosition(
        boot_ms,
        round(at.latitude * 1e7),
        round(at.longitude * 1e7),
        round(height_m * 1000),
        vx,
        vy,
        vz,
        hdg,
    )


def home(at: Location = HOME, amsl_m: float = 0.0) -> HomePosition:
    return HomePosition(round(at.latitude * 1e7), round(at.longitude * 1e7), round(amsl_m * 1000))


def folded(*messages: Message, t: Telemetry | None = None) -> Telemetry:
    t = t or Telemetry()
    for message in messages:
        t = fold(t, message, AIRFRAME)
    return t


def flying(
    mode: int = LOITER, *, height_m: float = 40.0, at: Location = HOME, status: int = 4
) -> Telemetry:
    """A vehicle in the air over `at`, everything reported once."""
    return folded(
        heartbeat(mode, status=status),
        home(),
        position(at, height_m=height_m),
        GpsRaw(3),
        BatteryStatus(0, 80),
        ExtendedSysState(LandedState.IN_AIR),
    )


def test_the_numbers_are_mavlink_commons() -> None:
    for name in (
        "MAV_AUTOPILOT_ARDUPILOTMEGA",
        "MAV_AUTOPILOT_INVALID",
        "MAV_AUTOPILOT_PX4",
        "MAV_TYPE_ONBOARD_CONTROLLER",
        "MAV_MODE_FLAG_CUSTOM_MODE_ENABLED",
        "MAV_MODE_FLAG_SAFETY_ARMED",
        "MAV_STATE_ACTIVE",
        "MAV_STATE_CRITICAL",
        "MAV_STATE_EMERGENCY",
        "MAV_SEVERITY_CRITICAL",
        "MAV_FRAME_GLOBAL_RELATIVE_ALT_INT",
        "GRIPPER_ACTION_RELEASE",
        "GRIPPER_ACTION_GRAB",
        "MAV_DO_REPOSITION_FLAGS_CHANGE_MODE",
    ):
        assert getattr(m, name) == getattr(mavlink, name), name
    assert m.GPS_FIX_TYPE_3D_FIX == mavlink.GPS_FIX_TYPE_3D_FIX
    assert m.AUTOPILOT_COMPONENT == mavlink.MAV_COMP_ID_AUTOPILOT1
    assert m.ONBOARD_COMPONENT == mavlink.MAV_COMP_ID_ONBOARD_COMPUTER
    for msg in ("GLOBAL_POSITION_INT", "BATTERY_STATUS", "HOME_POSITION"):
        assert getattr(m, f"MSG_ID_{msg}") == getattr(mavlink, f"MAVLINK_MSG_ID_{msg}")
    for command in m.Command:
        assert command == getattr(mavlink, f"MAV_CMD_{command.name}")
    for result in m.MavResult:
        assert result == getattr(mavlink, f"MAV_RESULT_{result.name}", result)
    for landed in LandedState:
        assert landed == getattr(mavlink, f"MAV_LANDED_STATE_{landed.name}")


# --- readiness and the plain fields ------------------------------------------------------------


def test_the_state_is_ready_only_once_a_heartbeat_a_position_and_a_home_arrived() -> None:
    t = folded(heartbeat(), position(HOME))
    assert not t.ready
    assert not folded(home(), position(HOME)).ready
    assert folded(home(), t=t).ready


def test_before_anything_arrived_the_state_is_a_placeholder_that_is_not_ready() -> None:
    state = normalise(Telemetry(), AIRFRAME, link_ok=False)
    assert (state.gps_ok, state.link_ok, state.failsafe, state.phase) == (
        False,
        False,
        None,
        "disarmed",
    )
    assert state.landed
    assert state.battery_pct == 0.0


def test_position_velocity_and_heading_are_converted_to_si_units() -> None:
    at = from_enu(HOME, 300, 400)
    t = folded(position(at, height_m=39.5, velocity_cms=(300, 400, -150), hdg=5_310), home())
    state = normalise(t, AIRFRAME, link_ok=True)
    assert state.position.latitude == pytest.approx(at.latitude, abs=1e-7)
    assert state.position.longitude == pytest.approx(at.longitude, abs=1e-7)
    assert state.position.altitude_m == pytest.approx(39.5)
    assert state.ground_speed_mps == pytest.approx(5.0)
    assert state.climb_rate_mps == pytest.approx(1.5)  # NED: negative vz is up
    assert state.heading_deg == pytest.approx(53.1)
    assert state.home == HOME


def test_an_unknown_heading_comes_from_the_velocity_when_moving() -> None:
    t = folded(position(HOME, velocity_cms=(0, 500, 0), hdg=65_535))
    assert t.heading_deg == pytest.approx(90.0)  # vy is east
    still = folded(position(HOME, boot_ms=2_000, velocity_cms=(0, 10, 0), hdg=65_535), t=t)
    assert still.heading_deg == pytest.approx(90.0)


def test_a_position_of_zero_zero_is_no_position_yet() -> None:
    assert folded(GlobalPosition(1_000, 0, 0, 0, 0, 0, 0, 0)).position is None


@pytest.mark.parametrize(("fix", "ok"), [(0, False), (2, False), (3, True), (6, True)])
def test_gps_is_ok_with_a_3d_fix_or_better(fix: int, *, ok: bool) -> None:
    assert normalise(folded(GpsRaw(fix)), AIRFRAME, link_ok=True).gps_ok is ok


def test_energy_is_the_remaining_percentage_of_the_airframes_pack() -> None:
    state = normalise(folded(BatteryStatus(0, 50)), Airframe(battery_wh=100.0), link_ok=True)
    assert (state.battery_pct, state.energy_wh) == (50.0, 50.0)
    state = normalise(folded(SysStatus(25)), AIRFRAME, link_ok=True)
    assert state.energy_wh == pytest.approx(0.25 * AIRFRAME.battery_wh)


def test_an_unknown_remaining_or_another_battery_is_ignored() -> None:
    t = folded(BatteryStatus(0, 80), SysStatus(-1), BatteryStatus(1, 10), BatteryStatus(0, -1))
    assert t.battery_pct == 80.0


def test_the_payload_is_what_the_adapters_own_gripper_commands_left() -> None:
    t = payload_commanded(Telemetry(), 1.2)
    assert normalise(t, AIRFRAME, link_ok=True).payload_kg == 1.2
    assert normalise(payload_commanded(t, 0.0), AIRFRAME, link_ok=True).payload_kg == 0.0


# --- stale positions ---------------------------------------------------------------------------


def test_an_older_position_than_the_newest_is_ignored() -> None:
    new, old = from_enu(HOME, 100, 0), from_enu(HOME, 50, 0)
    t = folded(position(new, boot_ms=5_000), position(old, boot_ms=4_900))
    assert t.position is not None
    assert haversine_m(t.position, new) < 0.1
    assert t.boot_ms == 5_000


def test_a_position_from_much_earlier_means_a_reboot_and_is_taken() -> None:
    after = from_enu(HOME, 5, 0)
    t = folded(position(HOME, boot_ms=600_000), position(after, boot_ms=3_000))
    assert t.position is not None
    assert haversine_m(t.position, after) < 0.1
    assert t.boot_ms == 3_000
    assert REBOOT_JUMP_MS < 600_000 - 3_000


def test_after_a_link_loss_any_position_is_taken() -> None:
    t = link_lost(folded(position(HOME, boot_ms=5_000)))
    older = from_enu(HOME, 10, 0)
    t = folded(position(older, boot_ms=4_000), t=t)
    assert t.position is not None
    assert haversine_m(t.position, older) < 0.1


# --- modes and phases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("main", "sub", "name", "kind"),
    [
        (4, 2, "AUTO.TAKEOFF", ModeKind.TAKEOFF),
        (4, 3, "AUTO.LOITER", ModeKind.POSITION),
        (4, 4, "AUTO.MISSION", ModeKind.MISSION),
        (4, 5, "AUTO.RTL", ModeKind.RTL),
        (4, 6, "AUTO.LAND", ModeKind.LAND),
        (4, 9, "AUTO.PRECLAND", ModeKind.LAND),
        (3, 0, "POSCTL", ModeKind.OTHER),
        (6, 0, "OFFBOARD", ModeKind.OTHER),
        (42, 0, "MAIN_42", ModeKind.OTHER),
    ],
)
def test_px4_custom_modes_are_decoded(main: int, sub: int, name: str, kind: ModeKind) -> None:
    assert decode_mode(m.MAV_AUTOPILOT_PX4, ARMED, px4(main, sub)) == FlightMode(name, kind)


@pytest.mark.parametrize(
    ("number", "name", "kind"),
    [
        (4, "GUIDED", ModeKind.POSITION),
        (5, "LOITER", ModeKind.POSITION),
        (3, "AUTO", ModeKind.MISSION),
        (6, "RTL", ModeKind.RTL),
        (21, "SMART_RTL", ModeKind.RTL),
        (9, "LAND", ModeKind.LAND),
        (0, "STABILIZE", ModeKind.OTHER),
        (99, "MODE_99", ModeKind.OTHER),
    ],
)
def test_arducopter_modes_are_decoded(number: int, name: str, kind: ModeKind) -> None:
    mode = decode_mode(m.MAV_AUTOPILOT_ARDUPILOTMEGA, ARMED, number)
    assert mode == FlightMode(name, kind)


def test_without_custom_mode_enabled_the_mode_is_unknown() -> None:
    assert decode_mode(m.MAV_AUTOPILOT_PX4, 0, LOITER).kind is ModeKind.OTHER


@pytest.mark.parametrize(
    ("mode", "armed", "landed", "status", "phase"),
    [
        (LOITER, False, LandedState.ON_GROUND, m.MAV_STATE_ACTIVE, "disarmed"),
        (LOITER, True, LandedState.ON_GROUND, m.MAV_STATE_ACTIVE, "armed"),
        (LAND, True, LandedState.ON_GROUND, m.MAV_STATE_ACTIVE, "armed"),
        (TAKEOFF, True, LandedState.ON_GROUND, m.MAV_STATE_ACTIVE, "takeoff"),
        (TAKEOFF, True, LandedState.TAKEOFF, m.MAV_STATE_ACTIVE, "takeoff"),
        (LOITER, True, LandedState.TAKEOFF, m.MAV_STATE_ACTIVE, "takeoff"),
        (LOITER, True, LandedState.IN_AIR, m.MAV_STATE_ACTIVE, "hold"),
        (LAND, True, LandedState.LANDING, m.MAV_STATE_ACTIVE, "land"),
        (LAND, True, LandedState.LANDING, m.MAV_STATE_EMERGENCY, "emergency_land"),
        (RTL, True, LandedState.IN_AIR, m.MAV_STATE_CRITICAL, "rtl"),
        (RTL, True, LandedState.LANDING, m.MAV_STATE_CRITICAL, "rtl"),
        (MISSION, True, LandedState.IN_AIR, m.MAV_STATE_ACTIVE, "cruise"),
        (MISSION, True, LandedState.TAKEOFF, m.MAV_STATE_ACTIVE, "cruise"),
        (MISSION, True, LandedState.LANDING, m.MAV_STATE_ACTIVE, "cruise"),
        (POSCTL, True, LandedState.IN_AIR, m.MAV_STATE_ACTIVE, "posctl"),
    ],
)
def test_modes_map_onto_the_agents_phases(
    mode: int, *, armed: bool, landed: LandedState, status: int, phase: str
) -> None:
    t = folded(heartbeat(mode, armed=armed, status=status), ExtendedSysState(landed))
    state = normalise(t, AIRFRAME, link_ok=True)
    assert state.phase == phase
    assert state.armed is armed
    assert state.landed is (landed is LandedState.ON_GROUND)


def test_without_a_landed_state_a_disarmed_vehicle_counts_as_landed() -> None:
    assert normalise(folded(heartbeat(armed=False)), AIRFRAME, link_ok=True).landed
    assert not normalise(folded(heartbeat(armed=True)), AIRFRAME, link_ok=True).landed


def test_hold_mode_is_cruise_while_short_of_the_commanded_point_then_hold() -> None:
    target = from_enu(HOME, 1_000, 0)
    t = goto_commanded(flying(), target)
    assert normalise(t, AIRFRAME, link_ok=True).phase == "cruise"
    t = folded(position(from_enu(HOME, 500, 0), boot_ms=2_000, height_m=40), t=t)
    assert normalise(t, AIRFRAME, link_ok=True).phase == "cruise"
    t = folded(position(from_enu(HOME, 999, 0), boot_ms=3_000, height_m=40), t=t)
    state = normalise(t, AIRFRAME, link_ok=True)
    assert (state.phase, state.eta_s) == ("hold", None)
    # Arrival is latched: drifting out of the radius again does not restart the cruise.
    t = folded(position(from_enu(HOME, 995, 0), boot_ms=4_000, height_m=40), t=t)
    assert normalise(t, AIRFRAME, link_ok=True).phase == "hold"


def test_a_goto_from_the_ground_lifts_off_as_a_cruise() -> None:
    on_ground = folded(heartbeat(), home(), position(HOME), ExtendedSysState(LandedState.ON_GROUND))
    t = goto_commanded(on_ground, from_enu(HOME, 1_000, 0))
    t = folded(ExtendedSysState(LandedState.TAKEOFF), t=t)
    state = normalise(t, AIRFRAME, link_ok=True)
    assert (state.phase, state.landed) == ("cruise", False)


def test_a_hold_pauses_the_cruise_and_a_resume_continues_it() -> None:
    t = goto_commanded(flying(), from_enu(HOME, 1_000, 0))
    paused = hold_commanded(t)
    assert normalise(paused, AIRFRAME, link_ok=True).phase == "hold"
    assert normalise(resume_commanded(paused), AIRFRAME, link_ok=True).phase == "cruise"


def test_a_mode_someone_else_chose_or_a_disarm_drops_the_commanded_point() -> None:
    t = goto_commanded(flying(), from_enu(HOME, 1_000, 0))
    assert folded(heartbeat(RTL), t=t).intent.target is None
    assert folded(heartbeat(LOITER, armed=False), t=t).intent.target is None
    assert descent_commanded(t).intent.target is None
    assert folded(heartbeat(LOITER), t=t).intent.target is not None


# --- failsafes ---------------------------------------------------------------------------------


def failsafe_text(kind: str, rule: str, severity: int = m.MAV_SEVERITY_CRITICAL) -> StatusText:
    return StatusText(severity, f"{kind}: {rule}")


def test_a_failsafe_is_the_latest_failsafe_text_while_the_status_is_critical() -> None:
    t = flying()
    t = folded(failsafe_text("failsafe_battery", "battery_low"), t=t)
    assert t.failsafe is None  # the text comes first; the heartbeat engages it
    t = folded(heartbeat(RTL, status=m.MAV_STATE_CRITICAL), t=t)
    assert normalise(t, AIRFRAME, link_ok=True).failsafe == "failsafe_battery"
    t = folded(heartbeat(RTL, status=m.MAV_STATE_CRITICAL), t=t)  # its repeat was lost
    assert t.failsafe == "failsafe_battery"
    t = folded(failsafe_text("failsafe_motor", "motor", severity=0), t=t)  # a worse one, at once
    assert t.failsafe == "failsafe_motor"
    t = folded(heartbeat(LAND, status=m.MAV_STATE_EMERGENCY), t=t)
    assert t.failsafe == "failsafe_motor"
    assert normalise(t, AIRFRAME, link_ok=True).phase == "emergency_land"


def test_a_failsafe_clears_when_the_status_drops_back() -> None:
    t = folded(
        failsafe_text("failsafe_gps", "gps"),
        heartbeat(LOITER, status=m.MAV_STATE_CRITICAL),
        t=flying(),
    )
    assert t.failsafe == "failsafe_gps"
    t = folded(heartbeat(LOITER, status=m.MAV_STATE_ACTIVE), t=t)
    assert t.failsafe is None
    t = folded(heartbeat(LOITER, status=m.MAV_STATE_CRITICAL), t=t)  # an old text does not return
    assert t.failsafe == UNKNOWN_FAILSAFE


def test_a_critical_status_without_a_failsafe_text_is_an_unknown_failsafe() -> None:
    t = folded(heartbeat(RTL, status=m.MAV_STATE_CRITICAL), t=flying())
    assert t.failsafe == UNKNOWN_FAILSAFE
    t = folded(failsafe_text("failsafe_link", "companion_link"), t=t)
    assert t.failsafe == "failsafe_link"


def test_a_text_belongs_to_the_next_heartbeat_only() -> None:
    t = folded(
        failsafe_text("failsafe_battery", "battery_low"),
        heartbeat(LOITER, status=m.MAV_STATE_ACTIVE),
        heartbeat(RTL, status=m.MAV_STATE_CRITICAL),
        t=flying(),
    )
    assert t.failsafe == UNKNOWN_FAILSAFE


@pytest.mark.parametrize(
    "text",
    [
        StatusText(m.MAV_SEVERITY_CRITICAL + 2, "failsafe_battery: battery_low"),  # a warning
        StatusText(m.MAV_SEVERITY_CRITICAL, "Arming denied: no GPS"),
        StatusText(m.MAV_SEVERITY_CRITICAL, "failsafe_battery without a colon"),
    ],
)
def test_other_texts_are_not_failsafes(text: StatusText) -> None:
    t = folded(text, heartbeat(RTL, status=m.MAV_STATE_CRITICAL), t=flying())
    assert t.failsafe == UNKNOWN_FAILSAFE


# --- ETA ---------------------------------------------------------------------------------------


def test_the_cruise_eta_is_the_climb_plus_the_distance_at_cruise_speed() -> None:
    target = from_enu(HOME, 1_000, 0)
    t = goto_commanded(flying(height_m=15.0), target)
    eta = normalise(t, AIRFRAME, link_ok=True).eta_s
    assert eta is not None
    expected = (AIRFRAME.cruise_altitude_m - 15.0) / AIRFRAME.climb_speed_mps + (
        haversine_m(HOME, target) / AIRFRAME.cruise_speed_mps
    )
    assert eta == pytest.approx(expected)


def test_the_takeoff_eta_is_the_rest_of_the_climb() -> None:
    t = takeoff_commanded(flying(TAKEOFF, height_m=10.0), 40.0)
    eta = normalise(t, AIRFRAME, link_ok=True).eta_s
    assert eta == pytest.approx(30.0 / AIRFRAME.climb_speed_mps)


def test_the_landing_eta_ends_at_land_speed_and_an_emergency_descends_faster() -> None:
    t = flying(LAND, height_m=40.0)
    slow = AIRFRAME.land_slow_below_m
    expected = (40.0 - slow) / AIRFRAME.descent_speed_mps + slow / AIRFRAME.land_speed_mps
    assert normalise(t, AIRFRAME, link_ok=True).eta_s == pytest.approx(expected)
    emergency = folded(heartbeat(LAND, status=m.MAV_STATE_EMERGENCY), t=t)
    eta = normalise(emergency, AIRFRAME, link_ok=True).eta_s
    assert eta is not None
    assert eta < expected


def test_the_return_eta_flies_home_and_lands() -> None:
    away = from_enu(HOME, 2_000, 0)
    eta = normalise(flying(RTL, at=away), AIRFRAME, link_ok=True).eta_s
    assert eta is not None
    assert eta > haversine_m(away, HOME) / AIRFRAME.cruise_speed_mps
    overhead = normalise(flying(RTL), AIRFRAME, link_ok=True).eta_s
    assert overhead is not None
    assert overhead < eta


def test_holding_or_on_the_ground_there_is_no_eta() -> None:
    assert normalise(flying(), AIRFRAME, link_ok=True).eta_s is None
    on_ground = folded(ExtendedSysState(LandedState.ON_GROUND), t=flying())
    assert normalise(on_ground, AIRFRAME, link_ok=True).eta_s is None


def test_link_ok_is_the_watchdogs_word() -> None:
    t = flying()
    assert not normalise(t, AIRFRAME, link_ok=False).link_ok
    assert normalise(t, AIRFRAME, link_ok=True).link_ok


# --- decoding ----------------------------------------------------------------------------------


def frames(*messages: object, system: int = 1, mavlink1: bool = False) -> bytes:
    sender = mavlink.MAVLink(None, system, 1)
    data = b""
    for message in messages:
        data += bytes(message.pack(sender, force_mavlink1=mavlink1))  # type: ignore[attr-defined]
        sender.seq += 1
    return data


HEARTBEAT = mavlink.MAVLink_heartbeat_message(2, 12, ARMED, LOITER, 4, 3)
POSITION = mavlink.MAVLink_global_position_int_message(
    1_000, 473_769_000, 85_417_000, 0, 0, 0, 0, 0, 0
)


def test_the_codec_decodes_frames_into_typed_messages_with_their_sender() -> None:
    codec = Codec()
    decoded = codec.decode(frames(HEARTBEAT, POSITION, system=7))
    assert [f.message for f in decoded] == [heartbeat(), position(HOME)]
    assert {(f.system_id, f.component_id) for f in decoded} == {(7, 1)}
    assert codec.stats.frames == 2


def test_garbage_bad_crcs_and_mavlink_1_are_counted_and_skipped() -> None:
    codec = Codec()
    good = frames(HEARTBEAT)
    corrupt = bytearray(frames(POSITION))
    corrupt[-1] ^= 0xFF
    decoded = codec.decode(
        b"\x00garbage\x01" + bytes(corrupt) + frames(HEARTBEAT, mavlink1=True) + good
    )
    assert [f.message for f in decoded] == [heartbeat()]
    assert codec.stats.bad_data >= 2
    assert codec.stats.mavlink1 == 1


def test_a_frame_with_a_corrupt_length_does_not_swallow_the_frames_behind_it() -> None:
    corrupt = bytearray(frames(POSITION))
    corrupt[1] = 200  # claims far more payload than there is
    codec = Codec()
    decoded = codec.decode(bytes(corrupt) + frames(HEARTBEAT) + bytes(220))
    assert [f.message for f in decoded] == [heartbeat()]


def test_a_partial_frame_at_the_end_of_a_datagram_is_dropped_not_carried_over() -> None:
    codec = Codec()
    partial = frames(POSITION)[:10]
    assert codec.decode(partial, datagram=True) == []
    assert [f.message for f in codec.decode(frames(HEARTBEAT), datagram=True)] == [heartbeat()]
    # On a stream the same bytes wait for the rest of their frame.
    stream = Codec()
    whole = frames(POSITION)
    assert stream.decode(whole[:10]) == []
    assert [f.message for f in stream.decode(whole[10:])] == [position(HOME)]


def test_messages_the_adapter_does_not_read_are_counted_as_ignored() -> None:
    codec = Codec()
    attitude = mavlink.MAVLink_attitude_message(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert codec.decode(frames(attitude)) == []
    assert codec.stats.ignored == 1


def test_the_codec_sends_as_the_onboard_computer_under_the_vehicles_system_id() -> None:
    codec = Codec()
    codec.source_system = 9
    parser = mavlink.MAVLink(None)
    (hb,) = parser.parse_buffer(codec.heartbeat())
    assert (hb.get_srcSystem(), hb.get_srcComponent()) == (9, 191)
    assert (hb.type, hb.autopilot) == (m.MAV_TYPE_ONBOARD_CONTROLLER, m.MAV_AUTOPILOT_INVALID)
    params = (1.0, 0.0, 0.0, math.nan, 0.0, 0.0, 0.0)
    (command,) = parser.parse_buffer(codec.command_long(9, 1, 400, 2, params))
    assert (command.command, command.confirmation, command.param1) == (400, 2, 1.0)
    assert math.isnan(command.param4)
