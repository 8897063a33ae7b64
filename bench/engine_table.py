#!/usr/bin/env python3
"""The engine table of bench/README.md, from one run of `jielong bench`.

Writes the benchmark models (benchlib.SHAPES: sm135, tl1b; F16, Q8_0, Q4_0;
benchlib.model) into a scratch folder (never into the repository), runs
`jielong bench -p 128 -n 32 -t 1,2 --bandwidth -o json` on each, then
stories260K (tg256, f32 KV as llama2.c) and the scalar backend on sm135 Q8_0
for the SIMD gain, and prints a Markdown table: speed against the read
bandwidth measured in the same process, load time and peak memory. Ratios
against llama.cpp and llama2.c come from bench/compare.py, which runs them
beside jielong on this machine.

usage: bench/engine_table.py [--jielong build/jielong] [--dir /tmp/jielong-bench]
                             [--shared ../shared] [--reps 3] [--only sm135,tl1b] [--no-mmap]

--no-mmap reads the weights into huge pages instead of mapping the file.
"""
import argparse
import os
import sys

import benchlib as bl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jielong", default="build/jielong")
    ap.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "jielong-bench"))
    ap.add_argument("--shared", default=os.environ.get("JIELONG_SHARED", "../shared"))
    ap.add_argument("--reps", default="3")
    ap.add_argument("--only", default="sm135,tl1b")
    ap.add_argument("--no-mmap", action="store_true")
    a = ap.parse_args()
    load = ["--no-mmap"] if a.no_mmap else []
    os.makedirs(a.dir, exist_ok=True)
    print(f"{bl.cpu()}; {bl.utc_now()}; jielong {bl.git_commit()}; load average {bl.loadavg()}")
    print(f"weights: {'read into huge pages (--no-mmap)' if a.no_mmap else 'mapped from the file'}\n")

    rows = []
    for shape in a.only.split(","):
        for t in bl.TYPES:
            path = bl.model(a.jielong, shape, t, a.dir)
            res = bl.jielong_bench(a.jielong, path, ["-p", "128", "-n", "32", "-t", "1,2", "-r", a.reps,
                                                     "--bandwidth"] + load)
            for threads in (1, 2):
                rows.append((shape, t, threads, bl.test(res, threads, "pp"), bl.test(res, threads, "tg")))
            print(f"done {shape} {t}", file=sys.stderr)

    print("| model | type | size MiB | threads | pp128 t/s | tg32 t/s | read GB/s | tg·size/bw | load ms "
          "| peak RSS MiB (weights + KV) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape, t, threads, pp, tg in rows:
        size = tg["model_size"] / 2**20
        print(f"| {shape} | {t} | {size:.0f} | {threads} | {pp['avg_ts']:.1f} ± {pp['stddev_ts']:.1f} | "
              f"{tg['avg_ts']:.2f} ± {tg['stddev_ts']:.2f} | {tg['bandwidth_gbs']:.1f} | "
              f"{tg['bandwidth_fraction']:.2f} | {tg['load_ms']:.0f} | "
              f"{tg['peak_rss_bytes'] / 2**20:.0f} ({size:.0f} + {tg['kv_cache_bytes'] / 2**20:.1f}) |")

    stories = os.path.join(a.shared, "models", "stories260K", "stories260K.gguf")
    if os.path.exists(stories):
        for threads in (1, 2):
            res = bl.jielong_bench(a.jielong, stories, ["-p", "128", "-n", "256", "-t", str(threads), "-r", "10",
                                                        "--kv", "f32"] + load)
            pp, tg = bl.test(res, threads, "pp"), bl.test(res, threads, "tg")
            print(f"\nstories260K, {threads} thread(s), f32 KV: pp128 {pp['avg_ts']:.0f} ± {pp['stddev_ts']:.0f} "
                  f"t/s, tg256 {tg['avg_ts']:.0f} ± {tg['stddev_ts']:.0f} t/s")
    if "sm135" in a.only.split(","):
        q8 = bl.model(a.jielong, "sm135", "q8_0", a.dir)
        sc = bl.jielong_bench(a.jielong, q8, ["-p", "0", "-n", "8", "-t", "1", "-r", "1", "--backend", "scalar"]
                              + load)[0]
        be = bl.jielong_bench(a.jielong, q8, ["-p", "0", "-n", "8", "-t", "1", "-r", "3"] + load)[0]
        print(f"\nsm135 Q8_0 tg8, 1 thread: scalar {sc['avg_ts']:.2f} t/s, best {be['avg_ts']:.2f} t/s "
              f"(SIMD gain {be['avg_ts'] / sc['avg_ts']:.1f}x)")
    print(f"\nload average at the end: {bl.loadavg()}")


if __name__ == "__main__":
    main()
