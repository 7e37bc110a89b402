"""Progress of long work (replay, evaluation runs, ingest, the demo build) as one-line reports.

One tracker for all of them, so a person waiting reads the same line everywhere:
`replay b-1: 3,000/10,000 replays (30%), 512/s, ETA 0:00:14`. It is throttled so a fast loop
cannot flood a terminal or an event log: a first line, then at most one line per interval (and,
for an orchestrator's log, at most `steps` lines whatever the size), and always a final line with
the elapsed time. Where the lines go is the sink's business: the CLI writes them to stderr, the
Dagster layer to context.log. Time comes from an injectable clock, so tests need no sleeps.

A run the CLI starts in its own process (`--wait`, `rerun`, `demo`) reports through the Dagster
layer's sink; `echoing_to` lets the CLI hear those lines too without Dagster's own log.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

from eval_pipelines.core.errors import InvalidInputError

INTERVAL_ENV = "EVAL_PIPELINES_PROGRESS_INTERVAL"
TERMINAL_INTERVAL_S = 3.0
# Not a terminal (a CI log, a file): a line every half minute still shows a run is alive.
PIPE_INTERVAL_S = 30.0
# An orchestrator's event log: at most this many lines between the first and the final one.
LOG_STEPS = 20


@dataclass(frozen=True)
class ProgressReport:
    """The numbers behind one line. rate counts only work done by this run (not resumed work);
    fraction is done / total, or bytes read / bytes in all when the total count is unknown."""

    label: str
    unit: str
    done: int
    total: int | None
    fraction: float | None
    rate: float | None
    eta_s: float | None
    elapsed_s: float
    failed: int
    resumed: int
    detail: str
    final: bool


Sink = Callable[[str, ProgressReport], None]
Clock = Callable[[], float]

_echoes: list[Sink] = []
_echoes_lock = threading.Lock()


def lines_to(write: Callable[[str], None]) -> Sink:
    """A sink for anything that takes a line of text (print to stderr, context.log.info)."""

    def sink(line: str, report: ProgressReport) -> None:
        write(line)

    return sink


def _discard(line: str, report: ProgressReport) -> None:
    """No one listens."""


@contextmanager
def echoing_to(sink: Sink) -> Iterator[None]:
    """While open, lines of echoed outputs also go to sink: how a CLI process hears the progress
    of the Dagster steps it runs in process, and nothing else of their log."""
    with _echoes_lock:
        _echoes.append(sink)
    try:
        yield
    finally:
        with _echoes_lock:
            _echoes.remove(sink)


def _echoed(sink: Sink) -> Sink:
    def both(line: str, report: ProgressReport) -> None:
        sink(line, report)
        with _echoes_lock:
            listeners = list(_echoes)
        for listener in listeners:
            listener(line, report)

    return both


def interval_from_env(terminal: bool) -> float:
    """EVAL_PIPELINES_PROGRESS_INTERVAL seconds (0: every update), else a few seconds on a
    terminal and half a minute elsewhere; a bad value is the user's to fix (exit 2)."""
    configured = os.environ.get(INTERVAL_ENV)
    if configured is None or not configured.strip():
        return TERMINAL_INTERVAL_S if terminal else PIPE_INTERVAL_S
    try:
        value = float(configured)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(
            f"{INTERVAL_ENV}: expected a number of seconds >= 0, got {configured!r}"
        )
    return value


@dataclass(frozen=True)
class ProgressOutput:
    """Where progress goes and how often: interval_s between lines at least, and when steps is
    set, at most that many lines between the first and the final one, whatever the size."""

    sink: Sink
    interval_s: float
    steps: int | None = None
    clock: Clock = time.monotonic

    @classmethod
    def to_log(cls, write: Callable[[str], None]) -> ProgressOutput:
        """An orchestrator's log (context.log.info): bounded by count, echoed to listeners."""
        return cls(_echoed(lines_to(write)), interval_from_env(terminal=True), steps=LOG_STEPS)

    @classmethod
    def of(cls, given: ProgressOutput | Callable[[str], None] | None) -> ProgressOutput:
        """An output as it is; a plain line writer hears every update; None, nothing."""
        if isinstance(given, ProgressOutput):
            return given
        if given is None:
            return cls(_discard, math.inf)
        return cls(lines_to(given), 0.0)

    def track(
        self, label: str, unit: str, total: int | None, bytes_total: int | None = None
    ) -> Progress:
        return Progress(label, unit, total, self, bytes_total=bytes_total)


@dataclass
class _Counts:
    done: int = 0
    failed: int = 0
    resumed: int = 0
    bytes_done: int = 0
    detail: str = ""


@dataclass
class _Emitted:
    at: float = -math.inf
    fraction: float = -math.inf
    done: int = 0


@dataclass
class Progress:
    """One piece of long work. Use as a context manager: the first line on entry, the final line
    (with the elapsed time) on a normal exit; `advance` in between, once per chunk, never per row."""

    label: str
    unit: str
    total: int | None
    output: ProgressOutput
    bytes_total: int | None = None
    _counts: _Counts = field(default_factory=_Counts)
    _last: _Emitted = field(default_factory=_Emitted)
    _started: float = 0.0

    def __enter__(self) -> Progress:
        self._started = self.output.clock()
        self._emit(self._report(self._started, final=False))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.finish()

    def advance(
        self,
        count: int,
        *,
        failed: int = 0,
        resumed: bool = False,
        bytes_done: int | None = None,
        detail: str | None = None,
    ) -> None:
        """count more units done (resumed: finished by an earlier run, so not in the rate);
        bytes_done is the absolute position over all input when the total is unknown."""
        counts = self._counts
        counts.done += count
        counts.failed += failed
        counts.resumed += count if resumed else 0
        if bytes_done is not None:
            counts.bytes_done = bytes_done
        if detail is not None:
            counts.detail = detail
        now = self.output.clock()
        report = self._report(now, final=False)
        if self._due(now, report):
            self._emit(report)

    def finish(self) -> None:
        self._emit(self._report(self.output.clock(), final=True))

    def _due(self, now: float, report: ProgressReport) -> bool:
        if now - self._last.at < self.output.interval_s:
            return False
        steps = self.output.steps
        if steps is None:
            return True
        if report.fraction is None:
            return self._last.done == 0 and report.done > 0
        return report.fraction - self._last.fraction >= 1 / steps

    def _emit(self, report: ProgressReport) -> None:
        self._last = _Emitted(self.output.clock(), report.fraction or 0.0, report.done)
        self.output.sink(format_line(report), report)

    def _report(self, now: float, final: bool) -> ProgressReport:
        counts = self._counts
        elapsed = max(0.0, now - self._started)
        fraction = _fraction(counts, self.total, self.bytes_total)
        worked = counts.done - counts.resumed
        rate = worked / elapsed if elapsed > 0 and worked > 0 else None
        eta = None
        if rate is not None and self.total is not None and counts.done < self.total:
            eta = (self.total - counts.done) / rate
        elif self.total is None and fraction and fraction < 1 and elapsed > 0:
            eta = elapsed * (1 - fraction) / fraction
        return ProgressReport(
            label=self.label,
            unit=self.unit,
            done=counts.done,
            total=self.total,
            fraction=fraction,
            rate=rate,
            eta_s=None if final else eta,
            elapsed_s=elapsed,
            failed=counts.failed,
            resumed=counts.resumed,
            detail=counts.detail,
            final=final,
        )


def _fraction(counts: _Counts, total: int | None, bytes_total: int | None) -> float | None:
    if total is not None:
        return min(1.0, counts.done / total) if total else 1.0
    if bytes_total:
        return min(1.0, counts.bytes_done / bytes_total)
    return None


def format_duration(seconds: float) -> str:
    """h:mm:ss, rounded up so a nearly finished run never claims 0:00:00 left."""
    whole = math.ceil(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def format_rate(rate: float) -> str:
    if rate >= 100:
        return f"{rate:,.0f}"
    if rate >= 10:
        return f"{rate:.0f}"
    return f"{rate:.1f}"


def format_line(report: ProgressReport) -> str:
    """One deterministic line, e.g. `replay b-1: 3,000/10,000 replays (30%), 512/s, ETA 0:00:14`."""
    parts = []
    if report.total is not None:
        head = f"{report.done:,}/{report.total:,} {report.unit}"
        if report.fraction is not None:
            head += f" ({math.floor(report.fraction * 100)}%)"
        parts.append(head)
    else:
        parts.append(f"{report.done:,} {report.unit}")
        if report.fraction is not None:
            parts.append(f"{math.floor(report.fraction * 100)}% of the input read")
    if report.failed:
        parts.append(f"{report.failed:,} failed")
    if report.resumed:
        parts.append(f"{report.resumed:,} resumed from an earlier run")
    if report.detail:
        parts.append(report.detail)
    if report.final:
        parts.append(f"done in {format_duration(report.elapsed_s)}")
    if report.rate is not None:
        parts.append(f"{format_rate(report.rate)}/s")
    if report.eta_s is not None:
        parts.append(f"ETA {format_duration(report.eta_s)}")
    return f"{report.label}: " + ", ".join(parts)
