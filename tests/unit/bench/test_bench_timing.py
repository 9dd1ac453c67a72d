"""Article-equivalent seconds and the statistics: pure arithmetic on made-up traces."""

from __future__ import annotations

import pytest

from hotport.bench.timing import equivalent, percentile, summary, union_length
from hotport.engine.trace import OperationTrace, Phase


def trace(seconds: float, phases: list[Phase] | None = None) -> OperationTrace:
    t = OperationTrace("attach", clock=lambda: 100.0)
    t.started = 100.0
    t.ended = 100.0 + seconds
    t.phases = phases or []
    return t


def test_union_length_merges_overlaps() -> None:
    assert union_length([]) == 0
    assert union_length([(0, 1), (2, 3)]) == 2
    assert union_length([(0, 2), (1, 3)]) == 3
    assert union_length([(0, 5), (1, 2), (3, 4)]) == 5


def test_sequential_requests_are_scaled_back_up_and_local_time_is_not() -> None:
    # two requests, each 0.011 s of simulated delay inside a 0.012 s round trip; 0.006 s
    # of the operation is local (store, CPU)
    t = trace(0.030)
    reqs = [(100.0, 100.012, 0.011), (100.012, 100.024, 0.011)]
    eq = equivalent(t, reqs, time_scale=0.01)
    assert eq == pytest.approx(0.022 / 0.01 + 0.008)


def test_concurrent_requests_count_once() -> None:
    t = trace(0.012)
    reqs = [(100.0, 100.011, 0.011), (100.0, 100.010, 0.010)]
    assert equivalent(t, reqs, time_scale=0.01) == pytest.approx(1.1 + 0.001)


def test_lock_waits_and_the_memory_hypervisor_are_scaled_a_real_one_is_not() -> None:
    phases = [Phase("lock-port", 0.0, 0.010), Phase("plug", 0.010, 0.001)]
    t = trace(0.011, phases)
    assert equivalent(t, [], time_scale=0.01) == pytest.approx(1.1)
    assert equivalent(t, [], time_scale=0.01, real_hypervisor=True) == pytest.approx(1.001)


def test_the_scaled_part_never_exceeds_the_operation() -> None:
    t = trace(0.010)
    assert equivalent(t, [(99.0, 100.010, 5.0)], time_scale=0.5) == pytest.approx(0.02)


def test_percentiles() -> None:
    data = [float(i) for i in range(1, 101)]
    assert percentile(data, 50) == pytest.approx(50.5)
    assert percentile(data, 99) == pytest.approx(99.01)
    assert percentile([3.0], 95) == 3.0
    s = summary([1.0, 2.0, 3.0])
    assert (s["n"], s["median"], s["min"], s["max"]) == (3, 2.0, 1.0, 3.0)
    assert summary([])["n"] == 0
