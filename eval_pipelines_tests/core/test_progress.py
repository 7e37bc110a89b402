"""The progress tracker on a fake clock: throttling, rate, ETA, unknown totals, the final line."""

from __future__ import annotations

import itertools

import pytest

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.progress import (
    INTERVAL_ENV,
    ProgressOutput,
    ProgressReport,
    echoing_to,
    interval_from_env,
    lines_to,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recorder() -> tuple[list[tuple[str, ProgressReport]], ProgressOutput, FakeClock]:
    heard: list[tuple[str, ProgressReport]] = []
    clock = FakeClock()
    return heard, ProgressOutput(lambda line, r: heard.append((line, r)), 5.0, clock=clock), clock


def test_lines_say_done_total_rate_and_eta_deterministically() -> None:
    heard, output, clock = recorder()
    with output.track("replay demo_better", "sessions", 10_000) as tracker:
        clock.now += 5.0
        tracker.advance(3_000)
        clock.now += 9.0
        tracker.advance(4_000, failed=12)
    lines = [line for line, _ in heard]
    assert lines == [
        "replay demo_better: 0/10,000 sessions (0%)",
        "replay demo_better: 3,000/10,000 sessions (30%), 600/s, ETA 0:00:12",
        "replay demo_better: 7,000/10,000 sessions (70%), 12 failed, 500/s, ETA 0:00:06",
        "replay demo_better: 7,000/10,000 sessions (70%), 12 failed, done in 0:00:14, 500/s",
    ]
    final = heard[-1][1]
    assert final.final and final.elapsed_s == 14.0 and final.eta_s is None


def test_a_fast_loop_gets_one_line_per_interval_and_always_the_final_one() -> None:
    heard, output, clock = recorder()
    with output.track("evaluate r", "queries", 100_000) as tracker:
        for _ in range(800):
            clock.now += 0.125  # 100 s in all, one line at most every 5 s
            tracker.advance(125)
    assert len(heard) == 1 + 20 + 1
    assert heard[-1][0].startswith("evaluate r: 100,000/100,000 queries (100%), done in 0:01:40")
    times = [r.elapsed_s for _, r in heard[1:-1]]
    assert all(b - a >= 5.0 - 1e-9 for a, b in itertools.pairwise(times))


def test_a_log_output_is_bounded_by_count_whatever_the_size_and_speed() -> None:
    heard: list[str] = []
    clock = FakeClock()
    output = ProgressOutput(lines_to(heard.append), 0.0, steps=20, clock=clock)
    for total, chunk in ((50, 1), (1_000_000, 1000)):
        heard.clear()
        with output.track("replay b", "replays", total) as tracker:
            for _ in range(total // chunk):
                tracker.advance(chunk)
        assert 3 <= len(heard) <= 22, (total, len(heard))


def test_resumed_work_counts_as_done_but_not_in_the_rate() -> None:
    heard, output, clock = recorder()
    with output.track("replay b", "replays", 4_000) as tracker:
        tracker.advance(2_000, resumed=True)
        clock.now += 10.0
        tracker.advance(1_000)
    assert len(heard) == 3, "the resumed chunks came within the interval of the first line"
    assert heard[1][0] == (
        "replay b: 3,000/4,000 replays (75%), 2,000 resumed from an earlier run, 100/s, ETA 0:00:10"
    )


def test_an_unknown_total_reports_the_count_and_the_share_of_bytes_read() -> None:
    heard, output, clock = recorder()
    with output.track("ingest executions", "records", None, bytes_total=4_000) as tracker:
        clock.now += 10.0
        tracker.advance(250_000, bytes_done=1_000)
    assert heard[0][0] == "ingest executions: 0 records, 0% of the input read"
    assert heard[1][0] == (
        "ingest executions: 250,000 records, 25% of the input read, 25,000/s, ETA 0:00:30"
    )
    assert heard[2][1].final and heard[2][1].total is None


def test_no_line_ends_a_failed_piece_of_work() -> None:
    heard, output, _ = recorder()
    with pytest.raises(RuntimeError), output.track("ingest x", "records", None) as tracker:
        tracker.advance(10)
        raise RuntimeError("parse error")
    assert not any(r.final for _, r in heard)


def test_echoes_hear_log_outputs_only_while_open() -> None:
    heard: list[str] = []
    echoed: list[str] = []
    output = ProgressOutput.to_log(heard.append)
    with echoing_to(lines_to(echoed.append)), output.track("replay b", "replays", 1) as tracker:
        tracker.advance(1)
    with output.track("replay c", "replays", 1):
        pass
    assert echoed == [line for line in heard if line.startswith("replay b")]
    assert echoed and len(heard) > len(echoed)


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert interval_from_env(terminal=True) < interval_from_env(terminal=False)
    monkeypatch.setenv(INTERVAL_ENV, "0")
    assert interval_from_env(terminal=False) == 0.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        with pytest.raises(InvalidInputError, match=f"{INTERVAL_ENV}: expected a number"):
            interval_from_env(terminal=True)
