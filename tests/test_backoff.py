"""Backoff is a pure value object: exponential, capped, jittered."""

import pytest

from hyperliquid_ws import Backoff


def test_grows_exponentially_up_to_the_cap_without_jitter():
    backoff = Backoff(initial=0.5, maximum=4, jitter=0)
    assert [backoff.delay(n) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]


def test_jitter_takes_at_most_its_fraction_off():
    low = Backoff(initial=1, maximum=8, jitter=0.5, random=lambda: 0.999999)
    high = Backoff(initial=1, maximum=8, jitter=0.5, random=lambda: 0.0)
    assert high.delay(2) == 4
    assert 2 <= low.delay(2) < 2.0001


def test_first_retry_comes_within_a_second_by_default():
    assert Backoff().delay(0) < 1


def test_huge_attempt_counts_do_not_overflow():
    assert Backoff(initial=1, maximum=30, jitter=0).delay(10_000) == 30


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"initial": 5, "maximum": 1}, {"jitter": 2}, {"multiplier": 0.5}]
)
def test_bad_values_fail_at_construction(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)
