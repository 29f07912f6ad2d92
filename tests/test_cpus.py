"""How many CPUs recs may use: the affinity mask, capped by a cgroup quota."""

from __future__ import annotations

import os

from recs import cpus


def test_cores_follow_acgroup_quota(tmp_path, monkeypatch):
    limits = tmp_path / "cpu.max"
    for text, expected in [("max 100000\n", None), ("150000 100000\n", 1.5), ("garbage", None)]:
        limits.write_text(text)
        assert cpus.cgroup_quota(limits) == expected
    assert cpus.cgroup_quota(tmp_path / "missing") is None
    try:
        monkeypatch.setattr(cpus, "cgroup_quota", lambda: 1.5)
        cpus.cores.cache_clear()
        assert cpus.cores() == min(2, len(os.sched_getaffinity(0)))
        monkeypatch.setattr(cpus, "cgroup_quota", lambda: 0.2)
        cpus.cores.cache_clear()
        assert cpus.cores() == 1
    finally:
        monkeypatch.undo()
        cpus.cores.cache_clear()  # the real count for the tests after this one


def test_cores_never_exceed_the_affinity_mask():
    cpus.cores.cache_clear()
    try:
        assert 1 <= cpus.cores() <= len(os.sched_getaffinity(0))
    finally:
        cpus.cores.cache_clear()
