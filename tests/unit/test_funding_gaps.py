"""Holes in a pair's funding times are judged by the spacing around them (`costs.funding_gaps`):
a pair on 1 h funding has holes under 12 h (the old per-pair median floored at 8 h missed them),
and Binance's moves between 8 h, 4 h and 1 h funding are schedules, not holes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketcast.costs import LONGEST_FUNDING_INTERVAL_NS, funding_gaps, period_funding_sums

H = 3600 * 10**9  # one hour in ns, the pipeline's unit
END = LONGEST_FUNDING_INTERVAL_NS


def _schedule(*segments: tuple[int, int]) -> np.ndarray:
    """Funding times in ns: ``(interval hours, events)`` segments one after another."""
    times, now = [], 0
    for hours, events in segments:
        for _ in range(events):
            times.append(now)
            now += hours * H
    return np.asarray(times, dtype=np.int64)


def _holes(times: np.ndarray, **kwargs: object) -> list[tuple[int, int]]:
    starts, ends = funding_gaps(times, end_spacing=END, **kwargs)  # type: ignore[arg-type]
    return [(int(a) // H, int(b) // H) for a, b in zip(starts, ends, strict=True)]


def test_a_few_missing_hours_on_an_hourly_pair_are_a_hole() -> None:
    times = _schedule((1, 200))
    cut = np.delete(times, [100, 101, 102, 103, 104])  # 99:00 to 105:00, six hours
    assert _holes(cut) == [(99, 105)]
    # the old rule (one median per pair, floored at 8 h) saw none under 12 h
    assert funding_gaps(cut, window=10**6, min_spacing=END)[0].size == 0
    # a held day across it has no funding sum: missing, not "no funding paid"
    sums = period_funding_sums(
        cut, np.full(cut.size, 1e-4), [72 * H, 96 * H], [96 * H, 120 * H], end_spacing=END
    )
    assert sums[0] == pytest.approx(24e-4)
    assert np.isnan(sums[1])


def test_schedule_changes_between_8_4_and_1_hours_are_not_holes() -> None:
    times = _schedule((8, 60), (4, 40), (1, 48), (8, 30), (1, 30), (4, 3), (8, 2))
    assert _holes(times) == []


def test_a_month_missing_is_a_hole_whatever_the_schedule() -> None:
    for hours in (1, 4, 8):
        times = _schedule((hours, 2000))
        cut = times[(times < 300 * H) | (times >= 1020 * H)]
        before, after = cut[cut < 300 * H][-1], cut[cut >= 1020 * H][0]
        assert _holes(cut) == [(int(before // H), int(after // H))]


def test_the_ends_are_floored_and_a_single_interval_has_no_usual_spacing() -> None:
    # 4 h funding whose last interval is 8 h: a schedule change just at the end is not a hole
    assert _holes(_schedule((4, 30), (8, 2))) == []
    # without the floor it reads as one (nothing after it says 8 h is the schedule)
    assert funding_gaps(_schedule((4, 30), (8, 2)))[0].size == 1
    assert funding_gaps(np.array([0, 5 * H]))[0].size == 0
    with pytest.raises(ValueError, match="window"):
        funding_gaps(_schedule((1, 5)), window=0)


def test_datetime64_times_and_a_timedelta_floor() -> None:
    times = np.datetime64("2024-03-01T00:00", "ns") + _schedule((1, 50)).astype("m8[ns]")
    cut = np.delete(times, [20, 21, 22])
    starts, ends = funding_gaps(cut, end_spacing=np.timedelta64(8, "h"))
    assert starts.tolist() == [times[19].item()]
    assert ends.tolist() == [times[23].item()]


@settings(max_examples=60, deadline=None)
@given(
    segments=st.lists(
        st.tuples(st.sampled_from([1, 4, 8]), st.integers(min_value=40, max_value=80)),
        min_size=1,
        max_size=5,
    ),
    data=st.data(),
)
def test_one_cut_inside_a_long_segment_is_the_only_hole(
    segments: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Any chain of schedules of 40 or more events has no hole; removing two or more consecutive
    events inside one segment makes exactly that hole, when more than half of the 24 intervals
    either side of it are on its schedule (closer to a longer schedule, a hole shorter than 1.5
    times that one is not seen: the documented limit)."""
    times = _schedule(*segments)
    assert _holes(times) == []
    which = data.draw(st.integers(0, len(segments) - 1))
    first = sum(n for _, n in segments[:which])
    n = segments[which][1]
    width = data.draw(st.integers(2, 6))
    at = data.draw(st.integers(first + 14, first + n - 14 - width))
    cut = np.delete(times, np.arange(at, at + width))
    assert _holes(cut) == [(int(times[at - 1] // H), int(times[at + width] // H))]
