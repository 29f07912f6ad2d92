"""Benchmark: GET /related against `recs serve --workers 2`, with /healthz as the baseline.

    python -m bench.serve [--seconds 10] [--runs 3] [--connections 64]

Builds two stores (the sample corpus with the bundled model; 10,000 HuffPost articles from
../shared/data with the hashing encoder, since serving cost does not depend on the model),
starts a real server on a loopback port, and drives it with wrk (Debian package `wrk`):

- saturation: `--connections` keep-alive connections, 2 wrk threads;
- latency: 4 keep-alive connections, 1 wrk thread.

GET /related rotates over every article URL of the store (a Lua script), so the cache of
serialised answers is exercised as a site would: each URL once per lap. Every figure is the
median of `--runs` runs and is reported next to /healthz measured the same way in the same
run, as a ratio. Nothing here asserts a time: it prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import BIN, DATA, ROOT

LUA = """
local paths = {}
for line in io.lines(os.getenv("RECS_BENCH_PATHS")) do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def huffpost_jsonl(target: Path, copies: int = 1) -> Path:
    """The HuffPost rows as a .jsonl corpus in the article field names; with `copies` > 1,
    the rows again and again, each copy with its own URL and a numbered title."""
    rows = [json.loads(line) for line in (DATA / "huffpost.jsonl").open(encoding="utf-8")]
    path = target / "huffpost.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for copy in range(copies):
            for row in rows:
                url = row["url"] or f"https://huffpost.example/{row['id']}"
                article = {
                    "title": row["title"] if copy == 0 else f"{row['title']} ({copy})",
                    "excerpt": row["excerpt"],
                    "webUrl": url if copy == 0 else f"{url}-copy-{copy}",
                    "publishedDateTime": row["date"],
                    "provider": {"name": row["provider"] or "HuffPost", "domain": "huffpost.com"},
                }
                out.write(json.dumps({k: v for k, v in article.items() if v is not None}) + "\n")
    return path


def build(content: Path, store_dir: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "recs"), "build", str(content), "--store", str(store_dir), "-q"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def article_paths(store_dir: Path, target: Path) -> tuple[Path, int]:
    sys.path.insert(0, str(ROOT))
    from recs import store

    snapshot = store.load(store_dir)
    path = target / f"{store_dir.name}-paths.txt"
    path.write_text(
        "".join(f"/related?url={urllib.parse.quote(a.url, safe='')}\n" for a in snapshot.articles)
    )
    return path, len(snapshot)


class Server:
    def __init__(self, store_dir: Path, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(BIN / "recs"),
                "serve",
                "--store",
                str(store_dir),
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started = time.monotonic()
        self.ready_after = self._wait_ready()

    def _wait_ready(self) -> float:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def wrk(
    url: str, connections: int, threads: int, seconds: int, script: Path | None, paths: Path | None
) -> dict[str, float]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    env = dict(os.environ)
    if paths:
        env["RECS_BENCH_PATHS"] = str(paths)
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, env=env, check=True
    ).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        return float(match.group(1)) * units[match.group(2)] if match else float("nan")

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
        "socket_errors": float(sum(int(g) for g in socket_errors.groups()))
        if socket_errors
        else 0.0,
    }


def measure(
    server: Server, paths: Path, script: Path, args: argparse.Namespace
) -> list[dict[str, object]]:
    rows = []
    cases = [
        ("/healthz", "saturation", args.connections, 2, None, None),
        ("/related", "saturation", args.connections, 2, script, paths),
        ("/healthz", "4 conns", 4, 1, None, None),
        ("/related", "4 conns", 4, 1, script, paths),
    ]
    # Warm the answer cache once, as a running site would be.
    wrk(server.base + "/", 8, 1, 2, script, paths)
    for route, load, connections, threads, case_script, case_paths in cases:
        runs = [
            wrk(server.base + route, connections, threads, args.seconds, case_script, case_paths)
            for _ in range(args.runs)
        ]
        rows.append(
            {
                "route": route,
                "load": load,
                "rps": statistics.median(r["rps"] for r in runs),
                "p50": statistics.median(r["p50"] for r in runs),
                "p99": statistics.median(r["p99"] for r in runs),
                "errors": sum(r["errors"] + r["socket_errors"] for r in runs),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", choices=["sample", "huffpost"], default=None)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `make system-deps` (Debian package wrk)")
    work = Path(tempfile.mkdtemp(prefix="recs-bench-serve-"))
    script = work / "rotate.lua"
    script.write_text(LUA)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("RECS_")}
    base_env["HF_HUB_OFFLINE"] = "1"
    stores = []
    if args.only in (None, "sample"):
        stores.append(
            ("sample, MiniLM", ROOT / "examples" / "content", work / "sample", dict(base_env))
        )
    if args.only in (None, "huffpost"):
        content = work / "huffpost"
        content.mkdir()
        huffpost_jsonl(content)
        stores.append(
            (
                "huffpost, hashing",
                content,
                work / "huffpost-store",
                {**base_env, "RECS_MODEL": "hashing"},
            )
        )
    print(
        "# GET /related vs /healthz, recs serve --workers 2, wrk on loopback; "
        f"{args.runs} runs of {args.seconds}s, medians"
    )
    print(f"# machine: {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}")
    print()
    print("| store | route | load | req/s | p50 ms | p99 ms | req/s vs /healthz | failed |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    try:
        for label, content, store_dir, env in stores:
            build(content, store_dir, env)
            paths, count = article_paths(store_dir, work)
            label = f"{label}, {count:,} articles"
            server = Server(store_dir, env)
            try:
                rows = measure(server, paths, script, args)
            finally:
                server.stop()
            baseline = {row["load"]: row["rps"] for row in rows if row["route"] == "/healthz"}
            for row in rows:
                ratio = float(row["rps"]) / float(baseline[row["load"]])  # type: ignore[arg-type]
                print(
                    f"| {label} | {row['route']} | {row['load']} | {row['rps']:,.0f} | "
                    f"{row['p50']:.2f} | {row['p99']:.2f} | {ratio:.2f} | {row['errors']:.0f} |"
                )
            print(f"| {label} | ready after | | | | | {server.ready_after:.1f}s | |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
