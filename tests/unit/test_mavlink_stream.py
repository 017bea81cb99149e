"""The endpoint's stream schedule: what is due when, and what a fleet may stream in all."""

import pytest

from firmware_sim.mavlink.protocol import MsgId
from firmware_sim.mavlink.stream import StreamSchedule, bounded_multiplier, frames_per_s


def test_the_default_streams_send_about_twenty_frames_a_second() -> None:
    assert frames_per_s() == pytest.approx(20.5)


def test_a_multiplier_speeds_every_stream_but_the_heartbeat() -> None:
    assert frames_per_s(4.0) == pytest.approx(1.0 + 4 * 19.5)
    schedule = StreamSchedule(rate_multiplier=4.0)
    assert schedule.interval_s(MsgId.HEARTBEAT) == 1.0
    assert schedule.interval_s(MsgId.GLOBAL_POSITION_INT) == pytest.approx(0.025)


def test_a_large_fleet_gets_less_than_it_asks_for_and_stays_within_the_budget() -> None:
    multiplier = bounded_multiplier(40.0, endpoints=10, frames_per_s_budget=500.0)
    assert 1.0 < multiplier < 40.0
    assert 10 * frames_per_s(multiplier) == pytest.approx(500.0)


def test_a_small_fleet_gets_what_it_asks_for() -> None:
    assert bounded_multiplier(3.0, endpoints=1, frames_per_s_budget=500.0) == 3.0


def test_the_multiplier_never_drops_below_the_agreed_rates() -> None:
    assert bounded_multiplier(40.0, endpoints=1000, frames_per_s_budget=500.0) == 1.0
    assert bounded_multiplier(0.5, endpoints=1, frames_per_s_budget=500.0) == 1.0


def test_a_due_message_is_sent_once_however_late_the_loop_is() -> None:
    schedule = StreamSchedule()
    assert MsgId.GLOBAL_POSITION_INT in schedule.due(0.0)
    late = schedule.due(10.0)
    assert late.count(MsgId.GLOBAL_POSITION_INT) == 1
    assert MsgId.GLOBAL_POSITION_INT not in schedule.due(10.05)
