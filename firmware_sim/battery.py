"""A LiPo pack: energy left, voltage under load, and PX4's linear-drain test mode."""

import bisect
import math
from typing import Any

# Resting cell voltage by state of charge, from ArduPilot's SITL battery model
# (libraries/SITL/SIM_Battery.cpp), ascending; below 3.85 % the voltage falls off a cliff.
_SOC_PCT = (
    0.0, 0.2, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.85, 7.69, 11.54, 15.38, 19.23, 23.08, 26.92, 30.77,
    34.62, 38.46, 42.31, 46.15, 50.0, 53.85, 57.69, 61.54, 65.38, 69.23, 73.08, 76.92, 80.77,
    84.62, 88.46, 92.31, 96.15, 100.0,
)  # fmt: skip
_CELL_V = (
    0.0, 0.3, 1.0, 1.6, 2.1, 2.5, 2.8, 2.977, 3.091, 3.165, 3.218, 3.296, 3.379, 3.462, 3.503,
    3.543, 3.588, 3.636, 3.679, 3.715, 3.742, 3.783, 3.801, 3.833, 3.854, 3.887, 3.908, 3.943,
    3.987, 4.039, 4.071, 4.085, 4.112, 4.173,
)  # fmt: skip


def lipo_cell_voltage(soc: float) -> float:
    """Resting voltage of one LiPo cell at state of charge `soc` (0.0 to 1.0), interpolated."""
    pct = min(100.0, max(0.0, soc * 100.0))
    i = bisect.bisect_left(_SOC_PCT, pct)
    if i == 0:
        return _CELL_V[0]
    low, high = _SOC_PCT[i - 1], _SOC_PCT[i]
    return _CELL_V[i - 1] + (_CELL_V[i] - _CELL_V[i - 1]) * (pct - low) / (high - low)


class Battery:
    """A pack's usable energy and its voltage; drained by the vehicle every step.

    Args:
        capacity_wh: usable energy when full.
        energy_wh: energy now; full when omitted.
        cells: cells in series.
        internal_resistance_ohm: pack resistance, which makes the voltage sag under load.
    """

    def __init__(
        self,
        capacity_wh: float,
        *,
        energy_wh: float | None = None,
        cells: int = 4,
        internal_resistance_ohm: float = 0.02,
    ) -> None:
        if capacity_wh <= 0:
            raise ValueError(f"capacity_wh must be positive, got {capacity_wh}")
        self.capacity_wh = capacity_wh
        self.energy_wh = capacity_wh if energy_wh is None else min(capacity_wh, energy_wh)
        self.cells = cells
        self.internal_resistance_ohm = internal_resistance_ohm
        self.drain_s: float | None = None
        self.min_pct = 0.0

    @classmethod
    def linear(
        cls, capacity_wh: float, *, drain_s: float = 60.0, min_pct: float = 50.0, cells: int = 4
    ) -> "Battery":
        """A test battery that ignores load: while armed it empties linearly over `drain_s`.

        PX4's simulated battery (`SIM_BAT_DRAIN`, `SIM_BAT_MIN_PCT`): the charge never falls
        below `min_pct`, and it is full again after a disarm, so an end-to-end test can reach
        a low-battery failsafe in seconds.
        """
        if drain_s <= 0:
            raise ValueError(f"drain_s must be positive, got {drain_s}")
        battery = cls(capacity_wh, cells=cells)
        battery.drain_s = drain_s
        battery.min_pct = min_pct
        return battery

    @property
    def percent(self) -> float:
        """State of charge, 0 to 100."""
        return 100.0 * self.energy_wh / self.capacity_wh

    def voltage(self, load_w: float = 0.0) -> float:
        """Pack voltage while delivering `load_w`: the resting voltage less the I·R drop.

        Solves `V = V_rest - (P / V)·R` for the higher root; past the pack's maximum power
        the voltage collapses to half the resting voltage.
        """
        resting = self.cells * lipo_cell_voltage(self.energy_wh / self.capacity_wh)
        if load_w <= 0.0:
            return resting
        discriminant = resting * resting - 4.0 * load_w * self.internal_resistance_ohm
        return (resting + math.sqrt(max(0.0, discriminant))) / 2.0

    def drain(self, power_w: float, dt: float, *, armed: bool = True, factor: float = 1.0) -> None:
        """Take `power_w` for `dt` seconds, or in linear mode a slice of the drain time.

        Args:
            power_w: draw in watts; ignored in linear mode.
            dt: seconds.
            armed: linear mode drains only while armed.
            factor: multiplies the drain (an injected `battery drain xk` failure).
        """
        if self.drain_s is None:
            self.energy_wh = max(0.0, self.energy_wh - factor * power_w * dt / 3600.0)
            return
        if not armed:
            return
        floor_wh = self.capacity_wh * self.min_pct / 100.0
        if self.energy_wh <= floor_wh:
            return  # already at (or dropped below) the floor: linear drain stops there
        step_wh = factor * self.capacity_wh * dt / self.drain_s
        self.energy_wh = max(floor_wh, self.energy_wh - step_wh)

    def drop_to(self, percent: float) -> None:
        """Lose charge at once down to `percent` (an injected `battery drop` failure)."""
        self.energy_wh = min(self.energy_wh, self.capacity_wh * max(0.0, percent) / 100.0)

    def on_disarm(self) -> None:
        """Hear that the vehicle disarmed: a linear-drain battery is full again, as in PX4."""
        if self.drain_s is not None:
            self.energy_wh = self.capacity_wh

    def recharge(self) -> None:
        """Fill the pack (a battery swap at the pad)."""
        self.energy_wh = self.capacity_wh

    def to_dict(self) -> dict[str, Any]:
        """The battery as JSON-able data."""
        return {
            "capacity_wh": self.capacity_wh,
            "energy_wh": self.energy_wh,
            "cells": self.cells,
            "internal_resistance_ohm": self.internal_resistance_ohm,
            "drain_s": self.drain_s,
            "min_pct": self.min_pct,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Battery":
        """Rebuild a battery saved by `to_dict`."""
        battery = cls(
            data["capacity_wh"],
            energy_wh=data["energy_wh"],
            cells=data["cells"],
            internal_resistance_ohm=data["internal_resistance_ohm"],
        )
        battery.drain_s = data["drain_s"]
        battery.min_pct = data["min_pct"]
        return battery
