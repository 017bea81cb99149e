"""How much energy a flight takes: the one estimate scheduler, agent and simulator share.

Hover power comes from momentum theory, `P = T^1.5 / sqrt(2·rho·A)` with `T = m·g`, so it grows
with total mass to the power 1.5; each phase scales it by a factor and climbing adds the
potential-energy rate `m·g·v_z`. Published multicopter models disagree 3-5x (field notes §9),
hence `Airframe.model_error` and a reserve fraction on top.
"""

import math

from contracts.ids import Location
from flight_model.airframe import Airframe
from flight_model.geo import haversine_m
from flight_model.phases import FlightPhase

GRAVITY_MPS2 = 9.80665
AIR_DENSITY_KG_M3 = 1.225


class EnergyModel:
    """Power draw by phase and energy of whole delivery trips for one airframe.

    Args:
        airframe: the drone's parameters.
        reserve_fraction: share of the usable battery a trip must leave unused on landing.
    """

    def __init__(self, airframe: Airframe | None = None, *, reserve_fraction: float = 0.25) -> None:
        self.airframe = airframe if airframe is not None else Airframe()
        self.reserve_fraction = reserve_fraction
        self._factors = {
            FlightPhase.ARMED: self.airframe.ground_armed_factor,
            FlightPhase.TAKEOFF: self.airframe.climb_factor,
            FlightPhase.CRUISE: self.airframe.cruise_factor,
            FlightPhase.RTL: self.airframe.cruise_factor,
            FlightPhase.HOLD: self.airframe.hover_factor,
            FlightPhase.LAND: self.airframe.descent_factor,
            FlightPhase.EMERGENCY_LAND: self.airframe.descent_factor,
        }
        self._rotor_term = math.sqrt(2.0 * AIR_DENSITY_KG_M3 * self.airframe.rotor_area_m2)

    @property
    def reserve_wh(self) -> float:
        """Energy every trip must leave in the battery."""
        return self.reserve_fraction * self.airframe.battery_wh

    def hover_power_w(self, total_mass_kg: float) -> float:
        """Electrical power to hover with `total_mass_kg` (airframe plus payload)."""
        thrust_n = total_mass_kg * GRAVITY_MPS2
        ideal_w: float = thrust_n**1.5 / self._rotor_term
        return ideal_w / self.airframe.efficiency

    def power_w(
        self, phase: FlightPhase, total_mass_kg: float, climb_rate_mps: float = 0.0
    ) -> float:
        """Electrical power drawn in `phase`, avionics included.

        Args:
            phase: DISARMED draws avionics only; ARMED is on the ground with motors idling.
            total_mass_kg: airframe plus payload.
            climb_rate_mps: vertical speed; only a climb (positive) adds power.
        """
        if phase is FlightPhase.DISARMED:
            return self.airframe.avionics_w
        power = self._factors[phase] * self.hover_power_w(total_mass_kg) + self.airframe.avionics_w
        if climb_rate_mps > 0.0 and phase is not FlightPhase.ARMED:
            power += total_mass_kg * GRAVITY_MPS2 * climb_rate_mps / self.airframe.efficiency
        return power

    def leg_wh(self, distance_m: float, *, payload_kg: float) -> float:
        """Energy of one leg: take off, climb to cruise altitude, fly `distance_m`, land.

        Flown the way the simulator flies it (acceleration ignored): climb at climb speed,
        cruise at cruise speed, descend at descent speed and the last metres at land speed.
        A leg shorter than the waypoint radius needs no flight at all.
        """
        a = self.airframe
        if distance_m <= a.waypoint_radius_m:
            return 0.0
        mass = a.empty_mass_kg + payload_kg
        height = a.cruise_altitude_m
        slow = min(height, a.land_slow_below_m)
        climb_s = height / a.climb_speed_mps
        cruise_s = distance_m / a.cruise_speed_mps
        descent_s = (height - slow) / a.descent_speed_mps + slow / a.land_speed_mps
        joules = (
            climb_s * self.power_w(FlightPhase.TAKEOFF, mass, a.climb_speed_mps)
            + cruise_s * self.power_w(FlightPhase.CRUISE, mass)
            + descent_s * self.power_w(FlightPhase.LAND, mass)
        )
        return joules / 3600.0

    def dwell_wh(self, *, payload_kg: float) -> float:
        """Energy of one load or release stop, priced as a hover with the package aboard.

        A hover is the dearest way to wait (a landed drone idles at a tenth of it), so the
        estimate holds whether the package goes down on a winch or the drone lands.
        """
        mass = self.airframe.empty_mass_kg + payload_kg
        return self.airframe.dwell_s * self.power_w(FlightPhase.HOLD, mass) / 3600.0

    def trip_wh(
        self,
        *,
        start: Location,
        pickup: Location,
        dropoff: Location,
        home: Location,
        payload_kg: float,
    ) -> float:
        """Energy to fly a delivery: to the pickup empty, to the dropoff loaded, home empty.

        Both stops cost one dwell; the sum is scaled by `Airframe.model_error`.
        """
        wh = (
            self.leg_wh(haversine_m(start, pickup), payload_kg=0.0)
            + self.dwell_wh(payload_kg=payload_kg)
            + self.leg_wh(haversine_m(pickup, dropoff), payload_kg=payload_kg)
            + self.dwell_wh(payload_kg=payload_kg)
            + self.leg_wh(haversine_m(dropoff, home), payload_kg=0.0)
        )
        return wh * self.airframe.model_error

    def feasible(
        self,
        *,
        energy_wh: float,
        start: Location,
        pickup: Location,
        dropoff: Location,
        home: Location,
        payload_kg: float,
    ) -> bool:
        """Whether a drone holding `energy_wh` can fly the trip and land with its reserve."""
        if payload_kg > self.airframe.max_payload_kg:
            return False
        trip = self.trip_wh(
            start=start, pickup=pickup, dropoff=dropoff, home=home, payload_kg=payload_kg
        )
        return trip <= energy_wh - self.reserve_wh

    def endurance_s(self, energy_wh: float, *, payload_kg: float = 0.0) -> float:
        """How long `energy_wh` keeps the drone hovering with `payload_kg`."""
        mass = self.airframe.empty_mass_kg + payload_kg
        return energy_wh * 3600.0 / self.power_w(FlightPhase.HOLD, mass)
