"""The message-rate limiter, with an injected clock: no sockets, no waiting."""

import threading

import pytest

from hyperliquid_ws.ratelimit import RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_allows_the_limit_then_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(3, 60, clock=clock)
    assert [limiter.try_acquire() for _ in range(3)] == [0, 0, 0]
    clock.now += 10
    assert limiter.try_acquire() == pytest.approx(50 + 3)  # with the 5% safety margin
    clock.now += 53
    assert limiter.try_acquire() == 0
    assert limiter.used == 1


def test_window_slides_message_by_message():
    clock = Clock()
    limiter = RateLimiter(2, 1.0, clock=clock)  # an effective window of 1.25 s
    limiter.try_acquire()
    clock.now += 0.5
    limiter.try_acquire()
    clock.now += 0.8
    assert limiter.try_acquire() == 0  # the first one has left the window
    assert limiter.try_acquire() == pytest.approx(0.45)


def test_acquire_gives_up_when_stopped_or_out_of_time():
    limiter = RateLimiter(1, 60)
    stop = threading.Event()
    assert limiter.acquire(stop)
    assert not limiter.acquire(stop, timeout=0.01)
    stop.set()
    assert not limiter.acquire(stop)


@pytest.mark.parametrize(("limit", "window"), [(0, 60), (True, 60), (1.5, 60), (5, 0)])
def test_bad_limits_are_refused(limit, window):
    with pytest.raises(ValueError):
        RateLimiter(limit, window)


def test_the_weight_budget_waits_for_enough_weight_to_leave_the_window():
    from hyperliquid_ws.ratelimit import WeightLimiter

    clock = Clock()
    budget = WeightLimiter(100, 60, clock=clock)  # an effective window of 63 s
    assert budget.try_acquire(60) == 0
    clock.now += 1
    budget.charge(5)  # what the first answer's items added
    clock.now += 1
    assert budget.try_acquire(30) == 0 and budget.used == 95
    assert budget.try_acquire(20) == pytest.approx(61)  # once the 60 has left: 35 + 20 fits
    clock.now += 61
    assert budget.try_acquire(20) == 0 and budget.used == 55
    assert budget.try_acquire(500) == pytest.approx(63)  # above the budget: waits for an empty window


def test_request_weights_follow_the_documented_table():
    from hyperliquid_ws.weights import items_weight, request_weight

    assert request_weight({"type": "l2Book", "coin": "BTC"}) == 2
    assert request_weight({"type": "userRole", "user": "0x0"}) == 60
    assert request_weight({"type": "userFillsByTime"}) == 20 and request_weight({}) == 20
    assert items_weight("recentTrades", [{}] * 100) == 5 and items_weight("userFills", [{}] * 21) == 2
    assert items_weight("candleSnapshot", [{}] * 61) == 2 and items_weight("l2Book", [{}] * 100) == 0
    assert items_weight("userFills", {"not": "a list"}) == 0


def test_limits_refuse_windows_that_are_not_a_sane_number_of_seconds():
    from hyperliquid_ws import Limits

    for bad in (0, -1.0, float("nan"), float("inf"), 1e12, True, "60"):
        with pytest.raises(ValueError, match="info_window"):
            Limits(info_window=bad)
    with pytest.raises(ValueError, match="info_weight_per_window"):
        Limits(info_weight_per_window=0)
    assert Limits(info_window=0.5).info_window == 0.5
