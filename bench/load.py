"""Load: GET /related at saturation against `recs serve --workers 2` while `recs build`
publishes a new store mid-run. Zero failed requests is the bar.

    .venv/bin/python -m bench.load                      # 60 s, 10,000 HuffPost articles
    .venv/bin/python -m bench.load --seconds 20 --corpus sample

The store is built with the hashing encoder (serving cost does not depend on the model;
the 10,000 articles come from ../shared/data/huffpost.jsonl, or the sample corpus with
--corpus sample). wrk (Debian package `wrk`) drives GET /related over every article URL
in turn (bench/serve.py's rotating Lua script) with `--connections` keep-alive
connections on loopback. A quarter of the way in, `recs build` runs on the same corpus
plus `--new` articles and publishes the next generation; both workers must move to it
while the load goes on.

Failed requests are counted twice: by wrk (non-2xx/3xx answers; connect, read, write and
timeout errors) and by the server (its /metrics: every GET /related answer that is not
200). A baseline run of the same length without a build, in the same process, gives the
throughput the reload run is compared with. Exit status 1 when any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.serve import BIN, DATA, LUA, ROOT, Server, article_paths, huffpost_jsonl, wrk


def related_statuses(base: str) -> dict[str, float]:
    """Answers to GET /related so far, by status, from the server's Prometheus metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    pattern = r'^recs_http_requests_total\{(?=[^}]*route="/related")(?=[^}]*method="GET")'
    pattern += r'[^}]*status="(\d+)"[^}]*\} ([\d.e+]+)$'
    for status, value in re.findall(pattern, text, re.MULTILINE):
        counts[status] = counts.get(status, 0.0) + float(value)
    return counts


def generations(base: str, attempts: int = 40) -> set[str]:
    """The generation each worker serves (fresh connections land on either worker)."""
    seen = {}
    for _ in range(attempts):
        with urllib.request.urlopen(base + "/readyz", timeout=10) as response:
            state = json.loads(response.read())
        seen[state["pid"]] = state["generation"]
    return set(seen.values())


def add_articles(content: Path, count: int) -> None:
    """`count` new articles, so the next build has something to publish."""
    with open(content / "added.jsonl", "w", encoding="utf-8") as out:
        for n in range(count):
            article = {
                "title": f"Added story {n} about load and reloads",
                "excerpt": f"Story {n} published while the server is under load.",
                "webUrl": f"https://load.example/{n}",
            }
            out.write(json.dumps(article) + "\n")


def run(args: argparse.Namespace, work: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    env.update(HF_HUB_OFFLINE="1", RECS_MODEL="hashing", RECS_RELOAD_INTERVAL="0.5")
    content = work / "content"
    if args.corpus == "sample":
        shutil.copytree(ROOT / "examples" / "content", content)
    else:
        content.mkdir()
        huffpost_jsonl(content)
    store_dir = work / "store"
    recs = str(BIN / "recs")
    env["RECS_STORE"] = str(store_dir)
    subprocess.run(
        [recs, "build", str(content), "-q"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    paths, count = article_paths(store_dir, work)
    script = work / "rotate.lua"
    script.write_text(LUA)
    server = Server(store_dir, env)
    try:
        url = server.base + "/"
        wrk(url, 8, 1, 2, script, paths)  # warm every worker's answer cache
        before = related_statuses(server.base)
        baseline = wrk(url, args.connections, 2, args.seconds, script, paths)
        old = generations(server.base)
        add_articles(content, args.new)
        build: dict[str, float | str] = {}

        def publish() -> None:
            time.sleep(args.seconds / 4)
            started = time.monotonic()
            done = subprocess.run(
                [recs, "build", str(content), "-q"], env=env, capture_output=True, text=True
            )
            build["seconds"] = time.monotonic() - started
            build["at"] = args.seconds / 4
            build["summary"] = done.stdout.strip() or done.stderr.strip()
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                now = generations(server.base, attempts=10)
                if len(now) == 1 and now != old:
                    build["switched"] = time.monotonic() - started
                    break
                time.sleep(0.2)

        builder = threading.Thread(target=publish)
        builder.start()
        loaded = wrk(url, args.connections, 2, args.seconds, script, paths)
        builder.join()
        after = related_statuses(server.base)
        new = generations(server.base)
    finally:
        server.stop()

    served = {s: after.get(s, 0.0) - before.get(s, 0.0) for s in after}
    not_ok = sum(v for s, v in served.items() if s != "200")
    failed = loaded["errors"] + loaded["socket_errors"] + baseline["errors"]
    failed += baseline["socket_errors"] + not_ok
    print(
        f"# GET /related, recs serve --workers 2, wrk -t2 -c{args.connections} on loopback, "
        f"{args.seconds}s per run; {count:,} articles ({args.corpus}, hashing encoder)"
    )
    print(f"# machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print()
    print("| run | req/s | p50 ms | p99 ms | wrk non-2xx | wrk socket errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, row in (("baseline (no build)", baseline), ("a build publishes mid-run", loaded)):
        print(
            f"| {label} | {row['rps']:,.0f} | {row['p50']:.2f} | {row['p99']:.2f} | "
            f"{row['errors']:.0f} | {row['socket_errors']:.0f} |"
        )
    print()
    print(f"- throughput under the reload: {loaded['rps'] / baseline['rps']:.2f} x the baseline")
    print(f"- server: GET /related answers by status over both runs: {served}")
    print(
        f"- build started {build.get('at', 0):.0f}s into the run, took "
        f"{float(build.get('seconds', 0)):.1f}s: {build.get('summary', '')}"
    )
    switched = build.get("switched")
    print(
        f"- generation {sorted(old)} -> {sorted(new)}; both workers on it "
        + (f"{float(switched):.1f}s after the build started" if switched else "NOT within the run")
    )
    print(f"- failed requests: {failed:.0f}")
    return 0 if failed == 0 and switched and len(new) == 1 and new != old else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--new", type=int, default=100, help="articles the mid-run build adds")
    parser.add_argument("--corpus", choices=["huffpost", "sample"], default="huffpost")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `make system-deps` (Debian package wrk)")
    if args.corpus == "huffpost" and not (DATA / "huffpost.jsonl").is_file():
        sys.exit(f"{DATA / 'huffpost.jsonl'} is missing; use --corpus sample")
    work = Path(tempfile.mkdtemp(prefix="recs-bench-load-"))
    try:
        code = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
