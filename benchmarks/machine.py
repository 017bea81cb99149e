"""What the figures were measured on, and what it cost: the machine, a process's CPU and memory.

Every section records the machine beside its figures (what else ran moves them), and the
fleet and storm sections the CPU and memory of each process, the broker's included when it
is a local process this user may see.
"""

import contextlib
import platform
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the venv; amqtt brings psutil

from bus.url import BrokerUrl

_MIB = 2**20


def machine() -> dict[str, Any]:
    """The machine: CPUs and their model, memory, Python and the platform."""
    return {
        "cpus": psutil.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _cpu_model() -> str | None:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or None
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or None


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores; idle is idle + iowait."""
    times = psutil.cpu_times()
    total = float(sum(times))
    idle = float(times.idle + getattr(times, "iowait", 0.0))
    return total - idle, total


def cpu_s(process: psutil.Process | None) -> float | None:
    """User and system CPU seconds of `process` so far; None if it is gone or unknown."""
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def rss_mib(process: psutil.Process | None) -> float | None:
    """Resident memory of `process` in MiB, to 0.1; None if it is gone or unknown."""
    if process is None:
        return None
    try:
        rss: int = process.memory_info().rss
    except psutil.Error:
        return None
    return round(rss / _MIB, 1)


def broker_process(url: BrokerUrl) -> psutil.Process | None:
    """The local process listening on the broker's port, if this user may see it."""
    if url.host not in {"127.0.0.1", "localhost", "::1"}:
        return None
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == url.port:
                return psutil.Process(conn.pid) if conn.pid is not None else None
    return None


def broker_description(broker: psutil.Process | None) -> dict[str, Any]:
    """The broker's process, and a name for it (the one broker in Python we run is amqtt)."""
    if broker is None:
        return {"name": "unknown (not a local process)", "process": None}
    process: str = broker.name()
    return {"name": "amqtt" if process.startswith("python") else process, "process": process}
