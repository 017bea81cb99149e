"""A drone's identity and limits, as its agent is told them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentSettings:
    """One drone's identity and limits."""

    drone_id: str
    max_payload_kg: float = 2.5
    telemetry_hz: float = 1.0
    cruise_altitude_m: float = 40.0
    dwell_s: float = 15.0
    battery_low_pct: float = 20.0
