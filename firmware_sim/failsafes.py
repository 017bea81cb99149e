"""Failsafe rules of the simulated flight controller, after PX4's defaults. Pure functions.

Ours (field notes §9): low battery -> return to launch, critical battery -> land where it is,
GPS loss -> hold, then land, companion link silent for 10 s -> return to launch (PX4
`COM_DL_LOSS_T`), motor failure -> emergency landing. A failsafe, once engaged while armed,
stays until the vehicle disarms and may only be replaced by a more severe one, so the
low-battery return happens once per flight and a reconnecting companion cannot cancel a
return it caused. On the ground only GPS and motor faults engage one (there is nothing to do
but stay, and say so); a disarmed vehicle's failsafe follows its faults as they come and go.
"""

from dataclasses import dataclass
from enum import StrEnum


class FailsafeAction(StrEnum):
    """What the controller does when a failsafe engages."""

    RTL = "rtl"
    HOLD_THEN_LAND = "hold_then_land"
    LAND = "land"
    EMERGENCY_LAND = "emergency_land"


@dataclass(frozen=True, slots=True)
class FailsafeConfig:
    """Thresholds, with PX4-like defaults.

    Attributes:
        low_pct: battery percent that triggers a return (PX4 `BAT_LOW_THR` 15 %; ours 20 %).
        critical_pct: battery percent that triggers a landing (PX4 `BAT_CRIT_THR`).
        gps_hold_s: how long to hover after losing GPS before landing.
        companion_timeout_s: silence of the companion computer that triggers a return.
    """

    low_pct: float = 20.0
    critical_pct: float = 10.0
    gps_hold_s: float = 5.0
    companion_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Failsafe:
    """An engaged failsafe.

    Attributes:
        reason: which rule fired ("battery_low", "battery_critical", "gps", "companion_link",
            "motor").
        kind: its announcing event, in `contracts.events.DroneEventKind`'s vocabulary
            ("failsafe_battery", "failsafe_gps", "failsafe_link", "failsafe_motor").
        action: what the vehicle does about it in the air.
        severity: a failsafe is only ever replaced by a more severe one.
        warnings: events announced just before `kind` (a low battery also warns).
    """

    reason: str
    kind: str
    action: FailsafeAction
    severity: int
    warnings: tuple[str, ...] = ()

    @property
    def events(self) -> tuple[str, ...]:
        """Kinds of the events announcing it, in order."""
        return (*self.warnings, self.kind)


LINK_LOST = Failsafe("companion_link", "failsafe_link", FailsafeAction.RTL, 1)
BATTERY_LOW = Failsafe("battery_low", "failsafe_battery", FailsafeAction.RTL, 2, ("battery_low",))
GPS_LOST = Failsafe("gps", "failsafe_gps", FailsafeAction.HOLD_THEN_LAND, 3)
BATTERY_CRITICAL = Failsafe("battery_critical", "failsafe_battery", FailsafeAction.LAND, 4)
MOTOR_FAILED = Failsafe("motor", "failsafe_motor", FailsafeAction.EMERGENCY_LAND, 5)

BY_REASON = {
    f.reason: f for f in (LINK_LOST, BATTERY_LOW, GPS_LOST, BATTERY_CRITICAL, MOTOR_FAILED)
}


@dataclass(frozen=True, slots=True)
class Health:
    """What the failsafe rules look at.

    Attributes:
        link_silent_s: seconds since the companion's last heartbeat, or None while no companion
            has ever spoken (PX4 watches a data link only once it was established).
    """

    in_air: bool
    battery_pct: float
    gps_ok: bool = True
    motors_ok: bool = True
    link_silent_s: float | None = None


def check(
    health: Health, *, active: Failsafe | None, config: FailsafeConfig | None = None
) -> Failsafe | None:
    """The failsafe to engage now, or None when nothing new (or nothing worse) is wrong.

    On the ground only a GPS or motor fault engages one: a landed drone is already safe from
    its battery and its companion, and `arming_denial` keeps a drained one there.
    """
    cfg = config if config is not None else FailsafeConfig()
    worst = _worst(health, cfg) if health.in_air else _worst_on_ground(health)
    if worst is None or (active is not None and worst.severity <= active.severity):
        return None
    return worst


def _worst(health: Health, cfg: FailsafeConfig) -> Failsafe | None:
    if not health.motors_ok:
        return MOTOR_FAILED
    if health.battery_pct <= cfg.critical_pct:
        return BATTERY_CRITICAL
    if not health.gps_ok:
        return GPS_LOST
    if health.battery_pct <= cfg.low_pct:
        return BATTERY_LOW
    if health.link_silent_s is not None and health.link_silent_s > cfg.companion_timeout_s:
        return LINK_LOST
    return None


def _worst_on_ground(health: Health) -> Failsafe | None:
    if not health.motors_ok:
        return MOTOR_FAILED
    if not health.gps_ok:
        return GPS_LOST
    return None


def arming_denial(health: Health, config: FailsafeConfig | None = None) -> str | None:
    """Why the vehicle must not arm, or None when it may (PX4's pre-arm checks)."""
    cfg = config if config is not None else FailsafeConfig()
    if not health.motors_ok:
        return "motor failure"
    if not health.gps_ok:
        return "no GPS fix"
    if health.battery_pct <= cfg.low_pct:
        return f"battery low ({health.battery_pct:.0f} %)"
    return None


def command_denial(active: Failsafe | None, command: str) -> str | None:
    """Why `command` is refused while `active` is engaged, or None when it is allowed.

    A failsafe overrides the companion: nothing may send the vehicle elsewhere. Landing on the
    spot is always allowed (it only ends a flight sooner), and asking for the return already
    under way is a harmless repeat.
    """
    if active is None or command == "land":
        return None
    if command == "return_to_launch" and active.action is FailsafeAction.RTL:
        return None
    return f"failsafe active: {active.reason}"
