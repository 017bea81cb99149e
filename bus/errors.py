"""The bus's errors: one root, so a caller catches ours and never a library's.

Each transport adapter translates its library's errors into these at its edge
(`aiomqtt.MqttError` becomes `TransportError` in `bus.aiomqtt_transport`).
"""


class BusError(Exception):
    """Root of every error the bus, its client and its transports raise."""


class TransportError(BusError):
    """The broker cannot be reached, refused the connection, or the connection was lost.

    The message says which, in the broker's or the operating system's words (for example
    `[Errno 111] Connection refused` or `CERTIFICATE_VERIFY_FAILED`).
    """
