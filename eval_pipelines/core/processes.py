"""Is the process that was running something still alive? Answered only when certain.

A run whose process was killed leaves no trace of its death, so the record of what it was doing must
be settled by someone else who can tell the process is gone. A pid alone is not enough: the kernel
reuses pids, so a process is identified by its pid and its start time (Linux /proc).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_PROC = Path("/proc")
# A process that started this long after it was seen is another process with a reused pid.
START_TIME_SLACK_S = 1.0


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (state first), None when the pid is free."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> str | None:
    """When a live process started (clock ticks after boot); None for a free pid or a zombie."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def this_process() -> str:
    """host/pid/start-ticks of the running process (start ticks empty where /proc is absent)."""
    return f"{socket.gethostname()}/{os.getpid()}/{_start_ticks(os.getpid()) or ''}"


def _pid_free(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def process_ended(identity: str) -> bool:
    """True only when the process named by this_process() is certainly gone: on this host, with
    its pid free or reused."""
    parts = identity.rsplit("/", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid, ticks = int(parts[1]), parts[2]
    if ticks and _PROC.is_dir():
        return _start_ticks(pid) != ticks
    return _pid_free(pid)


def _boot_time() -> float | None:
    try:
        for line in (_PROC / "stat").read_text(encoding="utf-8").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def pid_ended_since(pid: int, seen_at: float) -> bool:
    """True only when the local process that had `pid` at epoch `seen_at` is certainly gone: no
    live process has the pid, or the one that has it started after seen_at (a reused pid)."""
    boot = _boot_time()
    if boot is None:
        return _pid_free(pid)
    ticks = _start_ticks(pid)
    if ticks is None:
        return True
    started = boot + int(ticks) / os.sysconf("SC_CLK_TCK")
    return started > seen_at + START_TIME_SLACK_S
