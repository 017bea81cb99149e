"""Each simulated vehicle speaks MAVLink 2 (common dialect, PX4 flavour) on its own UDP port.

The agreement with the agent's adapter is docs/mavlink.md. Pure parts: `modes` (phase →
PX4 mode and status), `mission` (upload handshake, flying the items), `commands`
(COMMAND_LONG/INT → vehicle), `stream` (intervals, the vehicle's readout), `peers` (who
listens, which frames are stale); `codec` is the only module touching pymavlink's untyped
API; `endpoint` does the I/O. Not imported by `firmware_sim` itself, so the simulator alone
never loads pymavlink.
"""

from firmware_sim.mavlink.endpoint import EndpointStats, MavlinkEndpoint
from firmware_sim.mavlink.fleet import BASE_PORT, serve_fleet

__all__ = ["BASE_PORT", "EndpointStats", "MavlinkEndpoint", "serve_fleet"]
