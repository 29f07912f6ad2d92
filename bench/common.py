"""What every benchmark shares: the machine line, timing, medians, peak memory, tables.

The machine is shared and noisy, so a figure is never alone: each is the median of
several runs and is printed next to a baseline measured in the same run, on the same
input, as a ratio. Runs of a candidate and its baseline are interleaved (A B A B ...), so
a burst of load elsewhere hits both.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent


def machine() -> str:
    """One line: CPU model, cores, memory, load average now."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    load = os.getloadavg()[0]
    return (
        f"{model}, {os.cpu_count()} cores, {pages / 2**30:.0f} GiB, "
        f"load average {load:.1f} at start"
    )


def header(title: str, note: str = "") -> None:
    print()
    print(f"## {title}")
    print()
    print(f"machine: {machine()}")
    if note:
        print(note)
    print()


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table; numbers right-aligned."""
    print("| " + " | ".join(columns) + " |")
    aligns = [
        "---:" if rows and isinstance(rows[0][i], int | float) else "---"
        for i in range(len(columns))
    ]
    print("|" + "|".join(aligns) + "|")
    for row in rows:
        print("| " + " | ".join(fmt(value) for value in row) + " |")
    print()


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def interleaved(
    candidates: dict[str, Callable[[], Any]], runs: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Wall seconds of each candidate per run, the candidates alternating within a run."""
    if warmup:
        for run in candidates.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, run in candidates.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def run_measured(command: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a child process that prints one JSON object last, with its own `peak_mib`.

    The child measures itself (`self_peak_mib`): the rusage a parent gets from wait4 starts
    from the parent's own high-water mark at fork, so a child of a process holding a model
    would report at least that process's memory.
    """
    result = subprocess.run(
        list(command), stdout=subprocess.PIPE, env=env, text=True, cwd=str(ROOT), check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {result.returncode}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if "peak_mib" not in measured:
        raise RuntimeError(f"{' '.join(command)} did not report peak_mib")
    return measured


def self_peak_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM: this address space only)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
