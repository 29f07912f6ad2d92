"""The benchmark suite: `make bench` or `python -m bench [--part NAME ...] [options]`.

Parts (all by default, in this order):
  encoder     every backend and model: speed, CPU, GFLOP/s, memory, quality (~25 min)
  int8        int8 recipes vs fp32: list quality on both files, speed       (~20 min)
  index       all-pairs top-10: exact, IVF, HNSW (reference) at --sizes (1M: ~30 min)
  build       recs build on 10,000 HuffPost files: full, unchanged, 1%    (~30 min)
  service     recs serve memory and time to ready, 100k vs 10k articles   (~15 min)
  serve       GET /related throughput against /healthz (bench/serve.py)
  regenerate  incremental vs full recs regenerate (bench/regenerate.py)

Times are for the 2-core machine of docs/performance.md with other work running. Every
table prints medians of --runs runs next to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.common import ROOT, machine

PARTS = ("encoder", "int8", "index", "build", "service", "serve", "regenerate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument(
        "--part", action="append", choices=PARTS, help="run only this part (repeatable)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--sizes", default="10k,100k,1m", help="index part: row counts (e.g. 10k,100k,1m)"
    )
    parser.add_argument(
        "--data",
        choices=("clustered", "mixture"),
        default="clustered",
        help="index part: synthetic vectors (bench/synthetic.py)",
    )
    parser.add_argument(
        "--texts", type=int, default=2000, help="encoder and int8 parts: texts timed per run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="encoder part: no torch row and no quality passes"
    )
    args = parser.parse_args(argv)
    parts = args.part or list(PARTS)
    print(f"# recs benchmarks: {', '.join(parts)}")
    print(f"# machine: {machine()}")
    for part in parts:
        if part == "encoder":
            from bench import encoder

            encoder.run(args.texts, args.runs, args.quick)
        elif part == "int8":
            from bench import quantize

            quantize.run(args.texts, args.runs)
        elif part == "index":
            from bench import index

            sizes = [index.parse_size(s) for s in args.sizes.split(",") if s]
            index.run(sizes, args.runs, args.data)
        elif part == "build":
            from bench import build

            build.run(args.runs)
        elif part == "service":
            from bench import memory

            memory.run(args.runs)
        else:
            sys.stdout.flush()
            command = [sys.executable, "-m", f"bench.{part}", "--runs", str(args.runs)]
            subprocess.run(command, check=True, cwd=str(ROOT))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
