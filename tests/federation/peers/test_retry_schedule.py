"""The retry schedule and the classification of delivery failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federation.peers.retry_schedule import (
    MASTODON_MINIMUM_SECONDS,
    RetrySchedule,
    Verdict,
    classify_status,
    parse_retry_after,
)

DAY = 86_400.0
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_success_statuses_mean_delivered(status: int) -> None:
    assert classify_status(status) is Verdict.DELIVERED


@pytest.mark.parametrize("status", [500, 502, 503, 504, 401, 408, 429, 301, 302, 307, 308])
def test_server_errors_rate_limits_auth_races_and_redirects_are_retried(status: int) -> None:
    assert classify_status(status) is Verdict.TRANSIENT


@pytest.mark.parametrize("status", [400, 403, 405, 413, 415, 422, 501])
def test_client_errors_and_not_implemented_are_permanent(status: int) -> None:
    assert classify_status(status) is Verdict.PERMANENT


@pytest.mark.parametrize("status", [404, 410])
def test_not_found_and_gone_mean_the_inbox_is_gone(status: int) -> None:
    assert classify_status(status) is Verdict.GONE


def test_the_schedule_lasts_at_least_as_long_as_mastodons_and_under_four_days() -> None:
    schedule = RetrySchedule()
    assert schedule.max_retries == 16
    assert schedule.total_seconds() >= MASTODON_MINIMUM_SECONDS
    assert 2 * DAY < schedule.total_seconds() < 3 * DAY
    longest = sum(schedule.delay(n, 0.999) for n in range(1, 17))
    assert longest < 4 * DAY


def test_waits_grow_with_every_retry() -> None:
    schedule = RetrySchedule()
    waits = [schedule.base_delay(n) for n in range(1, 17)]
    assert waits == sorted(waits)
    assert waits[0] == 16.0
    assert waits[-1] == 15.0 + 16**4


def test_jitter_only_lengthens_a_wait_and_by_at_most_ten_percent() -> None:
    schedule = RetrySchedule()
    assert schedule.delay(5, 0.0) == schedule.base_delay(5)
    assert schedule.delay(5, 1.0) == pytest.approx(schedule.base_delay(5) * 1.1)


def test_the_schedule_ends_after_the_last_retry() -> None:
    schedule = RetrySchedule(max_retries=3)
    assert schedule.next_delay(3, 0.5) is not None
    assert schedule.next_delay(4, 0.5) is None


def test_retry_after_longer_than_the_backoff_is_honoured() -> None:
    schedule = RetrySchedule()
    assert schedule.next_delay(1, 0.0, retry_after=600.0) == 600.0


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    schedule = RetrySchedule()
    assert schedule.next_delay(5, 0.0, retry_after=1.0) == schedule.base_delay(5)


def test_retry_after_is_capped_by_the_ceiling() -> None:
    schedule = RetrySchedule(retry_after_ceiling_seconds=3600.0)
    assert schedule.next_delay(1, 0.0, retry_after=30 * DAY) == 3600.0


def test_the_time_scale_shrinks_every_wait_for_tests() -> None:
    schedule = RetrySchedule(time_scale=0.001)
    assert schedule.base_delay(2) == pytest.approx(0.031)
    assert schedule.next_delay(1, 0.0, retry_after=1000.0) == pytest.approx(1.0)


def test_retry_after_in_seconds_is_parsed() -> None:
    assert parse_retry_after("120", NOW) == 120.0


def test_retry_after_as_an_http_date_is_parsed_relative_to_now() -> None:
    assert parse_retry_after("Sat, 01 Mar 2025 12:05:00 GMT", NOW) == 300.0


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5"])
def test_unusable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None
