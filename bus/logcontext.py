"""What a log record is about: the delivery being handled and the component handling it.

The bus sets these while it handles a message, so every record logged by a handler (or by
the bus about that message) can carry the delivery id without passing it around. A
logging filter (`murmur.logs`) copies them onto each record. Context variables are per
asyncio task, so concurrent components in one process (`murmur sim`, `murmur up`) never
see each other's values.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DELIVERY_ID: ContextVar[str | None] = ContextVar("murmur_delivery_id", default=None)
"""The delivery the current message is about: its envelope's `correlationid`."""

COMPONENT: ContextVar[str | None] = ContextVar("murmur_component", default=None)
"""The bus component (service name or drone id) running the current task."""


@contextmanager
def delivery(delivery_id: str | None) -> Iterator[None]:
    """Records logged inside the block carry `delivery_id` (None: none)."""
    token = DELIVERY_ID.set(delivery_id)
    try:
        yield
    finally:
        DELIVERY_ID.reset(token)
