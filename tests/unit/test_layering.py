"""The dependency direction of docs/architecture.md, checked on the source and at import time."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {
    "contracts",
    "flight_model",
    "bus",
    "broker",
    "cloud",
    "drone_agent",
    "firmware_sim",
    "world",
    "murmur",
    "benchmarks",
}
PRODUCT = OURS - {"benchmarks", "murmur"}

# Which of our packages each package may import (docs/architecture.md, "The dependency
# direction"). `murmur` is the CLI: it may import everything, `benchmarks` only lazily.
ALLOWED = {
    "contracts": {"contracts"},
    "flight_model": {"flight_model", "contracts"},
    "bus": {"bus", "contracts"},
    "broker": {"broker", "contracts"},
    "firmware_sim": {"firmware_sim", "flight_model", "contracts"},
    "drone_agent": {"drone_agent", "bus", "flight_model", "contracts"},
    "cloud": {"cloud", "bus", "flight_model", "contracts"},
    "world": PRODUCT,
    "benchmarks": PRODUCT | {"benchmarks"},
    "murmur": OURS,
}
# The one module of the agent that may reach the simulator: its adapter to a simulated vehicle.
SIMULATOR_ADAPTER = "drone_agent/sim_adapter.py"


def imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level packages of ours imported by each module of `package`."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names & OURS
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_the_architecture_allows(package: str) -> None:
    for module, imports in imported_packages(package).items():
        allowed = ALLOWED[package] | ({"firmware_sim"} if module == SIMULATOR_ADAPTER else set())
        assert imports <= allowed, f"{module} imports {sorted(imports - allowed)}"


def test_only_the_bench_command_reaches_the_benchmarks_and_only_when_it_runs() -> None:
    """Test that the product never imports `benchmarks`, and `murmur bench` only lazily."""
    for package in sorted(PRODUCT):
        for module, imports in imported_packages(package).items():
            assert "benchmarks" not in imports, f"{module} imports benchmarks"
    for module, imports in imported_packages("murmur").items():
        top_level = top_level_packages(REPO / module)
        assert "benchmarks" not in top_level, f"{module} imports benchmarks at import time"
        if "benchmarks" in imports:
            assert module == "murmur/commands/bench.py", module


def test_the_agent_on_a_mavlink_flight_controller_never_loads_the_simulator() -> None:
    """Test that `murmur agent --fc mavlink:` on a Pi runs without importing `firmware_sim`."""
    code = (
        "import sys, drone_agent.wiring, drone_agent.mavlink, murmur.cli\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'firmware_sim')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == ""


def test_the_agent_side_does_not_import_the_embedded_broker_or_the_console() -> None:
    """Test that a Raspberry Pi agent never loads amqtt or rich."""
    code = (
        "import sys, contracts, bus.bus, drone_agent, firmware_sim, murmur.cli\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'amqtt', 'rich'})\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == ""


SERVICES = ("package", "scheduler", "delivery")


def top_level_packages(path: Path) -> set[str]:
    """Our packages a file imports at module level (not inside a function)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


def imported_modules(path: Path) -> set[str]:
    """Full names of the modules a file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_no_cloud_service_imports_another(service: str) -> None:
    files = sorted((REPO / "cloud" / service).rglob("*.py"))
    assert files, f"cloud/{service} has no modules"
    for path in files:
        others = {
            name
            for name in imported_modules(path)
            if name.startswith("cloud.") and name.split(".")[1] in set(SERVICES) - {service}
        }
        assert not others, f"{path.relative_to(REPO)} imports {sorted(others)}"


def test_the_layering_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The checks above would fail on a service that reaches into another."""
    module = tmp_path / "leak.py"
    module.write_text("from cloud.scheduler.fleet import Trip\nimport drone_agent.jobs\n")
    assert imported_modules(module) == {"cloud.scheduler.fleet", "drone_agent.jobs"}
