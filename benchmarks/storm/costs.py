"""What a storm costs each process: memory, and what each service has taken in and owes.

Sampled while the storm runs: the RSS of every process (psutil), and from each service's SQLite
file, read-only, the storm's requests in its inbox and the rows in its outbox. A service has
absorbed the burst when its inbox holds every request.
"""

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the venv; amqtt brings psutil

from benchmarks.machine import rss_mib


@dataclass
class Sampler:
    """RSS of each process, and each service's inbox (requests taken in) and outbox."""

    processes: dict[str, psutil.Process | None]
    dbs: dict[str, Path]
    wanted: int  # requests from `source` each inbox holds once the burst is absorbed
    source: str
    baseline: dict[str, float | None] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    outbox_peak: dict[str, int] = field(default_factory=dict)
    absorbed_at: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    # (seconds since the first publish, RSS in MiB, inbox, outbox) per process or service
    timeline: list[tuple[float, dict[str, float | None], dict[str, tuple[int, int]]]] = field(
        default_factory=list
    )

    def rss(self) -> dict[str, float | None]:
        return {name: rss_mib(p) for name, p in self.processes.items()}

    def sample(self, started: float) -> None:
        rss = self.rss()
        for name, value in rss.items():
            if value is not None:
                self.peak[name] = max(self.peak.get(name, 0.0), value)
        counts_now = {name: counts(db, self.source) for name, db in self.dbs.items()}
        self.timeline.append((round(time.monotonic() - started, 2), rss, counts_now))
        for name, (inbox, outbox) in counts_now.items():
            self.outbox_peak[name] = max(self.outbox_peak.get(name, 0), outbox)
            if inbox >= self.wanted and name not in self.absorbed_at:
                self.absorbed_at[name] = time.monotonic() - started
        self.samples += 1

    async def run(self, started: float, every_s: float) -> None:
        while True:
            await asyncio.to_thread(self.sample, started)
            await asyncio.sleep(every_s)


def counts(db: Path, source: str) -> tuple[int, int]:
    """Requests from `source` in a service's inbox, and rows in its outbox (read-only)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            inbox = conn.execute(
                "SELECT count(*) FROM bus_inbox WHERE source = ?", [source]
            ).fetchone()[0]
            outbox = conn.execute("SELECT count(*) FROM bus_outbox").fetchone()[0]
    except sqlite3.Error:
        return 0, 0
    return int(inbox), int(outbox)


def dead_letters(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM bus_dead_letters").fetchone()[0])
    except sqlite3.Error:
        return -1
