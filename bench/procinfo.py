"""What the benchmark reads about processes and the machine: CPU time, RSS, pinning, fd limits.

Linux only (/proc); elsewhere the numbers come back as zeros rather than failing, so the
benchmark still checks delivery on other systems.
"""

from __future__ import annotations

import os
import platform
import resource
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU time of a process so far, in seconds.

    `user` and `system` come from /proc/PID/stat (clock ticks, 10 ms steps); `total`
    comes from /proc/PID/task/*/schedstat (nanoseconds) when the kernel keeps it, since
    a 10 ms step is too coarse for a window of a second or two.
    """

    user: float
    system: float
    total: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.user - other.user, self.system - other.system, self.total - other.total)

    def as_dict(self) -> dict[str, float]:
        return {"user_s": round(self.user, 4), "system_s": round(self.system, 4),
                "total_s": round(self.total, 4)}


def process_cpu(pid: int) -> Cpu:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return Cpu(0.0, 0.0, 0.0)
    # The command name may hold spaces and parentheses: fields start after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    user = int(fields[11]) / CLOCK_TICKS
    system = int(fields[12]) / CLOCK_TICKS
    on_cpu_ns = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                on_cpu_ns += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        on_cpu_ns = 0
    total = on_cpu_ns / 1e9 if on_cpu_ns else user + system
    return Cpu(user, system, total)


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (10,000 sockets need it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


def pin(cpu: int | None) -> bool:
    """Pin this process to one CPU; False where that is not possible."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    return True


def renice(pid: int, niceness: int) -> int | None:
    """Set a process's niceness; its niceness afterwards, None where not allowed."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, niceness)
        return os.getpriority(os.PRIO_PROCESS, pid)
    except (OSError, AttributeError):
        return None


def make_realtime(pid: int, priority: int = 10) -> bool:
    """SCHED_FIFO for a process's main thread: other work on the machine can no longer
    preempt it (the kernel still leaves 5% of each CPU to everything else)."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        return False
    return True


def usable_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def machine() -> dict[str, object]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "system": platform.system(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }


def system_cpu() -> tuple[float, float]:
    """(busy, softirq) CPU seconds of the whole machine so far, all CPUs together.

    Busy minus the server's and the load generator's CPU is what everything else took
    during a window: other processes, and the kernel's softirq work for loopback TCP,
    which Linux does not charge to any process. /proc/stat is sampled at each clock tick
    while the processes' own times are exact, so the difference is approximate (it can
    come out a little below zero); a large value means a disturbed run.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    softirq = fields[6] if len(fields) > 6 else 0
    return (sum(fields[:8]) - idle) / CLOCK_TICKS, softirq / CLOCK_TICKS


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
