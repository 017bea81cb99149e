"""Plot telemetry lag (p50 and p99) against fleet size, one colour per broker.

Usage: python -m benchmarks.plot RESULTS.json [MORE.json ...] [--out docs/lag-vs-fleet.png]
       python -m benchmarks.plot RESULTS.json [...] --markdown   (the tables, no plot)

Reads the ``fleet`` section of `murmur bench --json` files (`benchmarks.fleet_scale` results,
wherever they are in each file). Needs matplotlib (`pip install -e '.[bench]'`).
"""

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "lag-vs-fleet.png"


def fleet_runs(document: Any) -> Iterator[dict[str, Any]]:  # noqa: ANN401 - any JSON
    """Every fleet_scale result inside `document`, depth first."""
    if isinstance(document, dict):
        if document.get("benchmark") == "fleet_scale" and isinstance(document.get("steps"), list):
            yield document
            return
        for value in document.values():
            yield from fleet_runs(value)
    elif isinstance(document, list):
        for value in document:
            yield from fleet_runs(value)


def broker_label(run: dict[str, Any], fallback: str) -> str:
    """The broker's name as the run recorded it (its process name at least)."""
    broker = run.get("broker")
    if isinstance(broker, dict):
        name = broker.get("name") or broker.get("process")
        if isinstance(name, str) and name:
            return name
    return fallback


def _num(value: Any, digits: int = 0, unit: str = "") -> str:  # noqa: ANN401 - JSON number
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def markdown_table(run: dict[str, Any]) -> str:
    """One fleet_scale run as a Markdown table, a row per fleet size."""
    header = (
        "| drones | connected in | sent (Hz per drone) | handled / expected | lag p50 | lag p99 "
        "| CPU % of one core: fleet / delivery / scheduler / broker (others) "
        "| RSS MiB: fleet (per drone) | RSS MiB: delivery / scheduler / package / broker "
        "| passes |"
    )
    lines = [
        header,
        "|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for s in run["steps"]:
        cpu, rss = s["cpu_pct_of_one_core"], s["rss_mib"]
        verdict = "yes" if s["ok"] else "no: " + "; ".join(s["failures"])
        lines.append(
            f"| {s['drones']:,} | {s['connect_s']:.1f} s | {s['rate_hz']:.3f} "
            f"| {s['messages_received']:,} / {s['messages_expected']:,} "
            f"| {_num(s['lag_p50_ms'], 1, ' ms')} | {_num(s['lag_p99_ms'], 1, ' ms')} "
            f"| {_num(cpu['fleet'])} / {_num(cpu['delivery'])} / {_num(cpu['scheduler'])} "
            f"/ {_num(cpu['broker'])} ({_num(cpu['others'])}) "
            f"| {_num(rss['fleet'])} ({_num(s['fleet_rss_mib_per_drone'], 3)}) "
            f"| {_num(rss['delivery'])} / {_num(rss['scheduler'])} / {_num(rss['package'])} "
            f"/ {_num(rss['broker'])} | {verdict} |"
        )
    return "\n".join(lines)


def plot(runs: Sequence[tuple[str, dict[str, Any]]], out: Path) -> None:
    """Draw p50 (dashed) and p99 (solid) lag per fleet size for each run to `out`."""
    import matplotlib as mpl  # noqa: PLC0415 - optional: only this command needs it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    limit_ms = 1000.0
    for i, (label, run) in enumerate(runs):
        colour = colours[i % len(colours)]
        limit_ms = float(run.get("p99_limit_ms", limit_ms))
        steps = [s for s in run["steps"] if s.get("lag_p99_ms") is not None]
        drones = [s["drones"] for s in steps]
        ax.plot(drones, [s["lag_p99_ms"] for s in steps], "-o", color=colour, label=f"{label} p99")
        ax.plot(drones, [s["lag_p50_ms"] for s in steps], "--o", color=colour, label=f"{label} p50")
        for s in run["steps"]:
            if s.get("lag_p99_ms") is None:  # nothing arrived: say so where the curve would go
                ax.annotate(
                    f"{s['drones']:,}: no data\n({'; '.join(s.get('failures', [])[:1])})",
                    (s["drones"], limit_ms),
                    xytext=(0, -30),
                    textcoords="offset points",
                    ha="center",
                    fontsize="x-small",
                    color=colour,
                    arrowprops={"arrowstyle": "->", "color": colour},
                )
        failed = [s for s in steps if not s.get("ok", True)]
        if failed:
            ax.plot(
                [s["drones"] for s in failed],
                [s["lag_p99_ms"] for s in failed],
                "x",
                color="black",
                markersize=10,
                label=f"{label}: step failed",
            )
    ax.axhline(
        limit_ms, color="red", linewidth=1, linestyle=":", label=f"p99 limit {limit_ms:g} ms"
    )
    ax.set_yscale("log")
    ax.set_xlabel("drones (each its own MQTT connection, telemetry at 1 Hz)")
    ax.set_ylabel("lag, agent publish to Delivery service handler (ms)")
    ax.set_title("Telemetry lag vs fleet size")
    ax.grid(visible=True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Plot the fleet_scale runs found in the given files."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__)
    parser.add_argument("results", type=Path, nargs="+", help="JSON result files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG (default %(default)s)")
    parser.add_argument("--markdown", action="store_true", help="print tables instead of plotting")
    args = parser.parse_args(argv)
    runs: list[tuple[str, dict[str, Any]]] = []
    for path in args.results:
        document = json.loads(path.read_text())
        runs.extend((broker_label(run, path.stem), run) for run in fleet_runs(document))
    if not runs:
        print(f"no fleet_scale results in {', '.join(map(str, args.results))}", file=sys.stderr)
        return 1
    if args.markdown:
        for label, run in runs:
            print(f"{label}: largest fleet that passes: {run.get('largest_ok')}\n")
            print(markdown_table(run) + "\n")
        return 0
    plot(runs, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
