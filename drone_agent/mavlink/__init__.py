"""`FlightController` over MAVLink 2 (pymavlink's codec on asyncio transports); docs/mavlink.md."""

from drone_agent.mavlink.connection import (
    MavlinkConnection,
    SerialPort,
    TcpClient,
    UdpIn,
    UdpOut,
    parse_connection,
)
from drone_agent.mavlink.controller import LinkStats, MavlinkFlightController

__all__ = [
    "LinkStats",
    "MavlinkConnection",
    "MavlinkFlightController",
    "SerialPort",
    "TcpClient",
    "UdpIn",
    "UdpOut",
    "parse_connection",
]
