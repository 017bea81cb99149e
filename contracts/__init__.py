"""The published language of Murmuration: topics, the envelope, every event, the state machines.

Pure: no I/O. Every other package imports it; it imports none of them.
"""

from contracts.codec import MAX_PAYLOAD_BYTES, DecodeError, DecodeErrorKind, decode
from contracts.envelope import Envelope
from contracts.events import REGISTRY, Event
from contracts.topics import DEFAULT_ROOT

__all__ = [
    "DEFAULT_ROOT",
    "MAX_PAYLOAD_BYTES",
    "REGISTRY",
    "DecodeError",
    "DecodeErrorKind",
    "Envelope",
    "Event",
    "decode",
]
