"""How many CPUs recs may use, and how its threads wait: every pool of threads or processes
sizes itself with `cores()`, never with the machine's count."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

# The cgroup v2 CPU limit of this process's container (absent outside one).
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

# Whether onnxruntime's threads busy-wait ("spin") for their next piece of work. Off: on
# the shared 2-core machine of README "Performance", paired runs gave more texts per
# second with it off (docs/configuration.md, "Threads"), and a spinning thread takes a core
# from whatever else runs on the host while it waits.
SPIN = False


@functools.cache
def cores() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (a
    container limited to 2 CPUs on a 64-core host gets 2). Read once per process."""
    try:
        count = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(count, math.ceil(quota))) if quota else count


def _cgroup_quota(path: Path = CPU_MAX) -> float | None:
    """CPUs allowed by the cgroup v2 quota ("200000 100000" is 2), None when unlimited."""
    try:
        quota, period = path.read_text().split()[:2]
        return int(quota) / int(period) if quota != "max" and int(period) > 0 else None
    except (OSError, ValueError):
        return None
