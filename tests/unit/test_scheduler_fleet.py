from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.scheduler.fleet import DroneView, Trip, best_candidate, can_fly, candidates, free
from contracts.events import Availability
from flight_model.energy import EnergyModel
from flight_model.geo import from_enu
from tests.builders import HOME, a_drone_state

ENERGY = EnergyModel()
# 500 m out, 1 km loaded, 1.5 km home: about 38 Wh, well within the builder's 180 Wh.
TRIP = Trip(pickup=from_enu(HOME, 500.0, 0.0), dropoff=from_enu(HOME, 1_500.0, 0.0), payload_kg=1.2)


def a_view(
    *,
    state_seq: int = 1,
    online: bool = True,
    fresh: bool = True,
    has_open_job: bool = False,
    **state: Any,
) -> DroneView:
    return DroneView(
        state=a_drone_state(**state),
        state_seq=state_seq,
        online=online,
        fresh=fresh,
        has_open_job=has_open_job,
    )


def _ids(views: list[DroneView]) -> list[str]:
    return [v.drone_id for v in views]


def _pick(*views: DroneView, declined: dict[str, int] | None = None) -> list[str]:
    return _ids(candidates(views, TRIP, ENERGY, declined=declined or {}))


def test_an_online_idle_reporting_drone_without_a_job_is_free_and_a_candidate() -> None:
    drone = a_view(drone_id="d-1")

    assert free(drone)
    assert can_fly(drone.state, TRIP, ENERGY)
    assert _pick(drone) == ["d-1"]


def test_a_view_is_named_by_its_drone() -> None:
    assert a_view(drone_id="d-42").drone_id == "d-42"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"online": False}, id="offline"),
        pytest.param({"fresh": False}, id="stale-telemetry"),
        pytest.param({"has_open_job": True}, id="open-job"),
        pytest.param({"availability": Availability.BUSY}, id="busy"),
        pytest.param({"availability": Availability.UNAVAILABLE}, id="unavailable"),
        pytest.param({"job_id": "job-0009"}, id="reports-a-job"),
    ],
)
def test_a_drone_that_is_not_free_is_never_a_candidate(overrides: dict[str, Any]) -> None:
    busy = a_view(drone_id="d-busy", **overrides)

    assert not free(busy)
    assert _pick(busy, a_view(drone_id="d-free")) == ["d-free"]


def test_a_drone_whose_capacity_is_below_the_payload_is_excluded() -> None:
    weak = a_view(drone_id="d-weak", max_payload_kg=1.0)
    exact = a_view(drone_id="d-exact", max_payload_kg=1.2)

    assert not can_fly(weak.state, TRIP, ENERGY)
    assert _pick(weak, exact) == ["d-exact"]


def test_a_drone_never_carries_more_than_its_airframe_whatever_it_reports() -> None:
    heavy = Trip(pickup=TRIP.pickup, dropoff=TRIP.dropoff, payload_kg=3.0)
    boasting = a_drone_state(max_payload_kg=5.0)

    assert not can_fly(boasting, heavy, ENERGY)


def test_a_drone_with_little_more_than_its_reserve_is_excluded() -> None:
    nearly_empty = a_view(drone_id="d-low", energy_wh=ENERGY.reserve_wh + 1.0)

    assert not can_fly(nearly_empty.state, TRIP, ENERGY)
    assert _pick(nearly_empty, a_view(drone_id="d-full")) == ["d-full"]


def test_a_drone_is_excluded_from_a_trip_longer_than_its_energy() -> None:
    far = Trip(
        pickup=from_enu(HOME, 20_000.0, 0.0),
        dropoff=from_enu(HOME, 20_000.0, 500.0),
        payload_kg=1.2,
    )
    drone = a_drone_state()

    assert can_fly(drone, TRIP, ENERGY)
    assert not can_fly(drone, far, ENERGY)
    assert candidates([a_view()], far, ENERGY, declined={}) == []


def test_energy_is_counted_from_where_the_drone_is_not_from_home() -> None:
    at_home = a_drone_state(position=HOME)
    out_far = a_drone_state(position=from_enu(HOME, 0.0, 25_000.0))

    assert can_fly(at_home, TRIP, ENERGY)
    assert not can_fly(out_far, TRIP, ENERGY)


def test_candidates_are_ranked_nearest_to_the_pickup_first() -> None:
    near = a_view(drone_id="d-3", position=from_enu(TRIP.pickup, 100.0, 0.0))
    middle = a_view(drone_id="d-1", position=from_enu(TRIP.pickup, 0.0, -300.0))
    far = a_view(drone_id="d-2", position=from_enu(TRIP.pickup, -600.0, 0.0))

    assert _pick(far, near, middle) == ["d-3", "d-1", "d-2"]


def test_drones_equally_near_the_pickup_are_ranked_by_id() -> None:
    here = from_enu(TRIP.pickup, 200.0, 0.0)
    drones = [a_view(drone_id=drone_id, position=here) for drone_id in ["d-c", "d-a", "d-b"]]

    assert _pick(*drones) == ["d-a", "d-b", "d-c"]


def test_a_drone_that_declined_is_not_asked_again_until_it_publishes_a_new_state() -> None:
    declined = {"d-1": 3}

    assert _pick(a_view(drone_id="d-1", state_seq=3), declined=declined) == []
    assert _pick(a_view(drone_id="d-1", state_seq=2), declined=declined) == []
    assert _pick(a_view(drone_id="d-1", state_seq=4), declined=declined) == ["d-1"]


def test_a_decline_by_one_drone_does_not_exclude_another() -> None:
    drones = [a_view(drone_id="d-1", state_seq=3), a_view(drone_id="d-2", state_seq=3)]

    assert _pick(*drones, declined={"d-1": 3}) == ["d-2"]


def test_a_drone_never_declined_is_a_candidate_from_its_first_state() -> None:
    assert _pick(a_view(drone_id="d-1", state_seq=0)) == ["d-1"]


_a_drone = st.builds(
    lambda i, east, north, energy_wh, payload, seq, free_: a_view(
        drone_id=f"d-{i}",
        position=from_enu(HOME, east, north),
        energy_wh=energy_wh,
        max_payload_kg=payload,
        state_seq=seq,
        has_open_job=not free_,
    ),
    st.integers(0, 30),
    st.floats(-8_000, 8_000),
    st.floats(-8_000, 8_000),
    st.floats(0, 180),
    st.sampled_from([1.0, 2.5]),
    st.integers(1, 3),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_a_drone, max_size=12, unique_by=lambda v: v.drone_id),
    st.dictionaries(st.sampled_from([f"d-{i}" for i in range(31)]), st.integers(0, 3)),
)
def test_the_best_candidate_is_the_first_of_the_candidates(
    views: list[DroneView], declined: dict[str, int]
) -> None:
    ranked = candidates(views, TRIP, ENERGY, declined=declined)

    assert best_candidate(views, TRIP, ENERGY, declined=declined) == (ranked[0] if ranked else None)
