"""Timing, peak-memory and reporting shared by every benchmark of the suite.

Contenders run in the same process on the same input, alternating (A B A B ...), after one warm-up
round whose outputs feed the correctness checks. Peak RSS of a measured step is measured on Linux by
resetting the kernel's high-water mark (writing 5 to /proc/self/clear_refs) just before the step and
reading VmHWM after it: the figure is the step's peak above the RSS it started from. Where that reset
is not possible the process's lifetime maximum (getrusage ru_maxrss) is reported and labelled so.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import platform
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval_pipelines.core.storage import write_text_atomic

RSS_STEP_PEAK = "step peak above its starting RSS (VmHWM after resetting /proc/self/clear_refs)"
RSS_PROCESS_MAX = "process lifetime max RSS (getrusage ru_maxrss); the step could not be isolated"
PACKAGES: tuple[str, ...] = (
    "eval-pipelines",
    "numpy",
    "pyarrow",
    "duckdb",
    "bm25s",
    "pytrec-eval-terrier",
    "pytrec_eval",
    "ranx",
    "dagster",
)
_STATUS_FIELD = re.compile(rb"^(VmHWM|VmRSS):\s+(\d+) kB", re.MULTILINE)


class CorrectnessError(AssertionError):
    """A contender's answer disagrees with its peer or with the benchmark's own definition."""


@dataclass
class ContenderResult:
    """One contender's repetitions: seconds each, and the largest peak-RSS figure among them."""

    name: str
    seconds: list[float]
    peak_rss_bytes: int
    rss_method: str
    items: int | None = None
    warmup_seconds: list[float] = field(default_factory=list)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def items_per_second(self) -> float | None:
        return None if self.items is None else self.items / self.median_seconds

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["median_seconds"] = self.median_seconds
        record["items_per_second"] = self.items_per_second
        return record


@dataclass
class Target:
    """A goal from issue 5 and whether this run met it."""

    description: str
    measured: float
    limit: float
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.higher_is_better else self.measured <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class BenchmarkResult:
    """Everything one benchmark reports; `checks` holds the correctness facts it verified."""

    name: str
    parameters: dict[str, Any]
    contenders: list[ContenderResult]
    checks: dict[str, Any]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    peer_groups: list[tuple[str, ...]] = field(default_factory=list)

    def ratios(self) -> dict[str, dict[str, float]]:
        """contender -> peer -> peer's median / contender's median (> 1: the contender is faster).

        Peers are the other contenders of its peer group (all of them when there are no groups),
        so an end-to-end time is never divided by a kernel-only one.
        """
        return {
            a.name: {
                b.name: b.median_seconds / a.median_seconds
                for b in self.contenders
                if b is not a and self._peers(a.name, b.name)
            }
            for a in self.contenders
        }

    def _peers(self, a: str, b: str) -> bool:
        return not self.peer_groups or any(a in g and b in g for g in self.peer_groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameters": self.parameters,
            "contenders": [c.to_json() for c in self.contenders],
            "ratios": self.ratios(),
            "checks": self.checks,
            "targets": [t.to_json() for t in self.targets],
            "notes": self.notes,
            "unavailable": self.unavailable,
            "peer_groups": [list(group) for group in self.peer_groups],
        }


def _status_kib() -> dict[bytes, int]:
    data = Path("/proc/self/status").read_bytes()
    return {name: int(value) for name, value in _STATUS_FIELD.findall(data)}


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_step(step: Callable[[], Any]) -> tuple[Any, float, int, str]:
    """(output, seconds, peak RSS bytes, method) of one call, after a garbage collection."""
    gc.collect()
    isolated = _reset_peak_rss()
    start_rss = _status_kib()[b"VmRSS"] if isolated else 0
    started = time.perf_counter()
    output = step()
    seconds = time.perf_counter() - started
    if isolated:
        peak = max(_status_kib()[b"VmHWM"] - start_rss, 0) * 1024
        return output, seconds, peak, RSS_STEP_PEAK
    return (
        output,
        seconds,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        RSS_PROCESS_MAX,
    )


def run_contenders(
    contenders: Sequence[tuple[str, Callable[[], Any]]],
    repeat: int,
    warmup: int = 1,
    items: int | None = None,
) -> tuple[list[ContenderResult], dict[str, Any]]:
    """Alternate the contenders: `warmup` rounds (timed apart), then `repeat` timed rounds.

    Warm-up times are kept separately: a peer that compiles on its first call shows it there.
    Returns the timings and each contender's output from the first warm-up round (for the checks).
    """
    if repeat < 1 or warmup < 1:
        raise ValueError(f"repeat and warmup must be >= 1, got repeat={repeat}, warmup={warmup}")
    outputs: dict[str, Any] = {}
    results = {name: ContenderResult(name, [], 0, RSS_STEP_PEAK, items) for name, _ in contenders}
    for round_number in range(warmup + repeat):
        for name, step in contenders:
            output, seconds, peak, method = measure_step(step)
            if round_number == 0:
                outputs[name] = output
            del output
            if round_number < warmup:
                results[name].warmup_seconds.append(seconds)
            else:
                result = results[name]
                result.seconds.append(seconds)
                result.peak_rss_bytes = max(result.peak_rss_bytes, peak)
                result.rss_method = method
    return list(results.values()), outputs


def machine_info() -> dict[str, Any]:
    """What the figures depend on: CPUs, Python, platform and the measured packages' versions."""
    versions: dict[str, str] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
    }


def _cpu_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else None


def _memory_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return round(int(found.group(1)) / 2**20, 1) if found else None


def write_results(results: Sequence[BenchmarkResult], path: Path, scale: str, repeat: int) -> Path:
    """All results and the machine as one JSON document, written atomically."""
    document = {
        "machine": machine_info(),
        "scale": scale,
        "repeat": repeat,
        "benchmarks": [r.to_json() for r in results],
    }
    return write_text_atomic(json.dumps(document, indent=2, sort_keys=False) + "\n", path)


def _mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def format_table(results: Sequence[BenchmarkResult]) -> str:
    """A Markdown table: one row per contender with median, throughput, peak RSS and ratios."""
    lines = [
        "| benchmark | contender | median s | runs | items/s | peak RSS | vs peers |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        ratios = result.ratios()
        for contender in result.contenders:
            rate = contender.items_per_second
            peers = ", ".join(
                f"{ratio:.2f}x vs {peer}" for peer, ratio in ratios[contender.name].items()
            )
            lines.append(
                f"| {result.name} | {contender.name} | {contender.median_seconds:.3f}"
                f" | {len(contender.seconds)} | {'' if rate is None else f'{rate:,.0f}'}"
                f" | {_mib(contender.peak_rss_bytes)} | {peers or '-'} |"
            )
        for name, reason in result.unavailable.items():
            lines.append(f"| {result.name} | {name} | - | 0 | - | - | {reason} |")
    target_lines = [
        f"- {result.name}: {target.description}: {target.measured:,.3f}"
        f" ({'>=' if target.higher_is_better else '<='} {target.limit:,}) "
        f"{'MET' if target.met else 'MISSED'}"
        for result in results
        for target in result.targets
    ]
    return "\n".join(lines + (["", "Targets:", *target_lines] if target_lines else []))
