"""Connection strings of the MAVLink adapter: the four forms, and every other string refused."""

import pytest

from drone_agent.mavlink import (
    MavlinkConnection,
    SerialPort,
    TcpClient,
    UdpIn,
    UdpOut,
    parse_connection,
)
from drone_agent.mavlink.connection import DEFAULT_BAUD


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("udpin:0.0.0.0:14540", UdpIn("0.0.0.0", 14540)),  # noqa: S104 - a string, not a bind
        ("udpout:127.0.0.1:14581", UdpOut("127.0.0.1", 14581)),
        ("udpout:sim.local:14581", UdpOut("sim.local", 14581)),
        ("tcp:127.0.0.1:5760", TcpClient("127.0.0.1", 5760)),
        ("tcp:[::1]:5760", TcpClient("::1", 5760)),
        ("udpin:[fe80::1%eth0]:14540", UdpIn("fe80::1%eth0", 14540)),
        ("serial:/dev/serial0", SerialPort("/dev/serial0", DEFAULT_BAUD)),
        ("serial:/dev/serial0:921600", SerialPort("/dev/serial0", 921_600)),
        ("serial:/dev/ttyACM0:57600", SerialPort("/dev/ttyACM0", 57_600)),
        (
            "serial:/dev/serial/by-path/platform-3f980000.usb-usb-0:1.3:1.0-port0",
            SerialPort("/dev/serial/by-path/platform-3f980000.usb-usb-0:1.3:1.0-port0"),
        ),
        (
            "serial:/dev/serial/by-path/platform-3f980000.usb-usb-0:1.3:1.0-port0:115200",
            SerialPort("/dev/serial/by-path/platform-3f980000.usb-usb-0:1.3:1.0-port0", 115_200),
        ),
    ],
)
def test_each_form_parses_into_its_typed_value(text: str, expected: MavlinkConnection) -> None:
    assert parse_connection(text) == expected


def test_the_default_baud_is_921600() -> None:
    assert DEFAULT_BAUD == 921_600


@pytest.mark.parametrize(
    "text",
    [
        "udpin:0.0.0.0:14540",
        "udpout:127.0.0.1:14581",
        "tcp:[::1]:5760",
        "serial:/dev/serial0:921600",
    ],
)
def test_a_parsed_connection_prints_back_as_its_string(text: str) -> None:
    assert str(parse_connection(text)) == text


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "empty"),
        (" udpin:0.0.0.0:14540", "whitespace"),
        ("/dev/ttyACM0", "no kind"),
        ("udp:127.0.0.1:14550", "unknown kind 'udp'"),
        ("tcpin:0.0.0.0:5760", "unknown kind 'tcpin'"),
        ("mavlink:udpin:0.0.0.0:14540", "unknown kind 'mavlink'"),
        ("serial:///dev/ttyACM0:57600", "URL"),
        ("udp://:14540", "URL"),
        ("udpin:0.0.0.0", "missing port"),
        ("udpin:0.0.0.0:", "missing port"),
        ("udpin::14540", "missing host"),
        ("udpin::14540", "0.0.0.0"),  # noqa: S104 - the hint in the message
        ("udpout:127.0.0.1:http", "port 'http' is not a number"),
        ("udpout:127.0.0.1:-1", "port '-1' is not a number"),
        ("udpout:127.0.0.1:0", "port 0 is outside 1..65535"),
        ("udpout:127.0.0.1:70000", "port 70000 is outside 1..65535"),
        ("tcp:::1:5760", "IPv6 host goes in brackets"),
        ("tcp:[::1:5760", "unclosed '['"),
        ("tcp:[]:5760", "invalid IPv6 host"),
        ("tcp:[::1]5760", "missing port after the host"),
        ("tcp:local host:5760", "invalid host"),
        ("serial:", "missing device"),
        ("serial::57600", "missing device"),
        ("serial:ttyACM0", "not an absolute path"),
        ("serial:/dev/ttyACM0:", "empty baud"),
        ("serial:/dev/ttyACM0:fast", "baud 'fast' is not a number"),
        ("serial:/dev/ttyACM0:12345", "baud 12345 is not a standard rate"),
        ("serial:/dev/tty ACM0", "whitespace"),
    ],
)
def test_an_invalid_string_is_refused_naming_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=r"expected|standard rate") as refused:
        parse_connection(text)
    assert named in str(refused.value)
    assert repr(text) in str(refused.value)
