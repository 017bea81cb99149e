"""Reconnect with capped exponential backoff and full jitter: the one way everything retries.

The wait before attempt *n* (failures since the last success) is uniform in
`[0, min(ceiling_s, base_s · 2^n)]` (AWS's "full jitter"), so a fleet that lost its broker
together does not come back together.
"""

import asyncio
import random


class Backoff:
    """Counts failures since the last success and waits accordingly."""

    def __init__(self, *, ceiling_s: float = 5.0, base_s: float = 0.05) -> None:
        self.ceiling_s = ceiling_s
        self.base_s = base_s
        self.failures = 0

    def succeeded(self) -> None:
        """A connection came up: the next failure starts from the shortest wait again."""
        self.failures = 0

    async def wait(self) -> None:
        """Sleep before the next attempt, and count this failure."""
        ceiling = min(self.ceiling_s, self.base_s * 2 ** min(self.failures, 16))
        self.failures += 1
        await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto
