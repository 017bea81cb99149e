"""The parameters of one simulated quadcopter: mass, rotors, battery and flight limits.

Kinematic defaults follow ArduPilot's `AC_WPNav` parameters (`WPNAV_SPEED` 1000 cm/s,
`WPNAV_SPEED_UP` 250, `WPNAV_SPEED_DN` 150, `WPNAV_ACCELERATION` 250 cm/s², `WPNAV_ACCEL_Z`
100 cm/s², `WPNAV_RADIUS` 200 cm); the energy defaults give a 2.5 kg quad on 15-inch props
about 23 minutes of hover from 89 Wh (field notes §9).
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Airframe:
    """A quadcopter's fixed parameters; `EnergyModel` and the simulated vehicle share them.

    Attributes:
        battery_wh: usable energy of a full pack, not its label capacity.
        efficiency: overall electrical-to-ideal-thrust-power efficiency (0.5-0.6 is typical).
        dwell_s: time spent loading or releasing a package, counted by the energy estimate.
        model_error: multiplies every trip estimate; above 1 when the model is known optimistic.
        land_speed_mps: final descent speed below `land_slow_below_m`, as PX4's `MPC_LAND_SPEED`.
        release_max_height_m: highest hover at which a package may be released (a winch's reach).
    """

    empty_mass_kg: float = 2.5
    max_payload_kg: float = 2.5
    rotor_area_m2: float = 0.46
    efficiency: float = 0.55
    avionics_w: float = 8.0
    battery_wh: float = 89.0
    cells: int = 4
    internal_resistance_ohm: float = 0.02
    cruise_speed_mps: float = 10.0
    climb_speed_mps: float = 2.5
    descent_speed_mps: float = 1.5
    acceleration_mps2: float = 2.5
    cruise_altitude_m: float = 40.0
    waypoint_radius_m: float = 2.0
    dwell_s: float = 15.0
    climb_factor: float = 1.2
    cruise_factor: float = 1.05
    descent_factor: float = 0.8
    hover_factor: float = 1.0
    ground_armed_factor: float = 0.1
    model_error: float = 1.0
    vertical_acceleration_mps2: float = 1.0
    land_speed_mps: float = 0.7
    land_slow_below_m: float = 5.0
    emergency_descent_speed_mps: float = 3.0
    max_altitude_m: float = 120.0
    release_max_height_m: float = 10.0
