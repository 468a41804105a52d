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
