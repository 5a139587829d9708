"""The benchmark's RSS sampler: real samples of this process."""

import time

from benchmarks.benchmark import TreeRSS


def test_a_stage_shorter_than_the_sampling_interval_reports_its_neighbours_not_zero() -> None:
    with TreeRSS(interval=0.2) as sampler:
        time.sleep(0.3)
        began = time.perf_counter()
        ended = began + 1e-6  # no sample can fall inside
        time.sleep(0.5)
    assert not [t for t, _ in sampler.samples if began <= t <= ended]
    assert sampler.peak_mb(began, ended) > 10  # this Python process holds more than 10 MB
    assert sampler.peak_mb(0, time.perf_counter()) >= sampler.peak_mb(began, ended)
