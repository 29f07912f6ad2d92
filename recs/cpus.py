"""How many CPUs recs may use, and how its threads wait: every pool of threads or processes
sizes itself with `cores()`, never with the machine's count."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

# The cgroup v2 CPU limit of this process's container (absent outside one).
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

# Whether onnxruntime's threads busy-wait ("spin") for their next piece of work. Off
# (docs/configuration.md, "Threads"; interleaved runs on the shared 2-core machine): int8
# run as 16 texts on two threads did 0.71x the texts/s with it on; the shipped int8 (one
# thread a session) is unaffected (1.00x); fp32 on two threads did 1.05-1.07x with it on,
# inside a run-to-run spread of 0.67-1.43x, and 0.98x per CPU-second. A spinning thread
# holds a core that the host's other work could use.
SPIN = False


@functools.cache
def cores() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (a
    container limited to 2 CPUs on a 64-core host gets 2). Read once per process."""
    try:
        count = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(count, math.ceil(quota))) if quota else count


def cgroup_quota(path: Path = CPU_MAX) -> float | None:
    """CPUs allowed by the cgroup v2 quota ("200000 100000" is 2), None when unlimited."""
    try:
        quota, period = path.read_text().split()[:2]
        return int(quota) / int(period) if quota != "max" and int(period) > 0 else None
    except (OSError, ValueError):
        return None
