"""Who is on the link, and which frames are stale. Pure: the caller passes real time in.

As mavlink-router's UDP server, the endpoint streams to every address it heard from lately.
Over UDP a frame may come twice or late; MAVLink's per-sender sequence number tells, so a
duplicated COMMAND_LONG datagram cannot run a command twice.
"""

from dataclasses import dataclass

Address = tuple[str, int]

PEER_TIMEOUT_S = 10.0
"""A peer silent this long no longer gets the stream."""

REORDER_WINDOW = 16
"""A frame at most this many sequence numbers behind its sender's last is a late one."""

RESYNC_S = 2.0
"""After this much silence a sender may start its numbering afresh (it restarted)."""


@dataclass(slots=True)
class _Sender:
    seq: int
    heard_at: float


class Peers:
    """Addresses heard lately, and the last sequence number of each sender behind them."""

    def __init__(self) -> None:
        self._heard: dict[Address, float] = {}
        self._senders: dict[tuple[Address, int, int], _Sender] = {}

    def in_order(self, address: Address, system: int, component: int, seq: int, now: float) -> bool:
        """Whether a frame is new: False for a duplicate or one overtaken by later frames."""
        key = (address, system, component)
        sender = self._senders.get(key)
        if sender is not None and now - sender.heard_at <= RESYNC_S:
            behind = (sender.seq - seq) % 256
            if behind <= REORDER_WINDOW:
                return False  # 0: the same frame again; 1..16: a late one
        self._senders[key] = _Sender(seq, now)
        return True

    def heard(self, address: Address, now: float) -> bool:
        """Note a valid frame from `address`; True when it is a new peer (or a returning one)."""
        last = self._heard.get(address)
        self._heard[address] = now
        return last is None or now - last > PEER_TIMEOUT_S

    def active(self, now: float) -> list[Address]:
        """Addresses heard within `PEER_TIMEOUT_S`; older ones are forgotten."""
        for address, at in list(self._heard.items()):
            if now - at > PEER_TIMEOUT_S:
                del self._heard[address]
                for key in [k for k in self._senders if k[0] == address]:
                    del self._senders[key]
        return list(self._heard)
