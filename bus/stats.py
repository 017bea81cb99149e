"""A component's bus counters: for logs, the console, the benchmark and tests."""

from dataclasses import dataclass


@dataclass
class BusStats:
    """What one bus has done since it started."""

    handled: int = 0
    volatile: int = 0  # of `handled`, QoS 0 events (telemetry): no inbox row, no commit to wait
    duplicates: int = 0
    dead_letters: int = 0
    retries: int = 0
    ignored: int = 0
    published: int = 0
    connections: int = 0

    def add(self, other: "BusStats") -> None:
        """Add `other`'s counts to these (a batch's, once it committed)."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)
