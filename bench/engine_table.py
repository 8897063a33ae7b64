#!/usr/bin/env python3
"""The engine table of bench/README.md, from one run of `jielong bench`.

Writes the benchmark models of ../shared/docs/BENCH.md (sm135, tl1b; F16, Q8_0,
Q4_0) with `jielong synth` into a scratch folder (never into the repository),
runs `jielong bench -p 128 -n 32 -t 1,2 --bandwidth -o json` on each, then
stories260K (1 thread, tg256, f32 KV as llama2.c) and the scalar backend on
sm135 Q8_0 for the SIMD gain, and prints a Markdown table with the llama.cpp
figures of BENCH.md beside ours (parsed from that file when it is there).

usage: bench/engine_table.py [--jielong build/jielong] [--dir /tmp/jielong-bench]
                             [--shared ../shared] [--reps 3] [--only sm135,tl1b] [--no-mmap]

--no-mmap reads the weights into huge pages instead of mapping the file.
"""
import argparse
import json
import os
import re
import subprocess
import sys

SHAPES = {
    "sm135": ["--embd", "576", "--ff", "1536", "--layers", "30", "--heads", "9", "--kv-heads", "3",
              "--vocab-size", "32000", "--tied"],
    "tl1b": ["--embd", "2048", "--ff", "5632", "--layers", "22", "--heads", "32", "--kv-heads", "4",
             "--vocab-size", "32000"],
}
TYPES = ["f16", "q8_0", "q4_0"]


def llamacpp_figures(bench_md):
    """{(model, TYPE, threads): (pp128, tg32)} from BENCH.md's llama.cpp table."""
    out = {}
    if not os.path.exists(bench_md):
        return out
    for line in open(bench_md, encoding="utf-8"):
        m = re.match(r"\|\s*(sm135|tl1b) (\S+)\s*\|[^|]*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", line)
        if m:
            out[(m.group(1), m.group(2).lower(), int(m.group(3)))] = (float(m.group(4)), float(m.group(5)))
    return out


def bench(jielong, model, args):
    cmd = [jielong, "bench", "-m", model, "-o", "json"] + args
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return json.loads(r.stdout)


def fmt(x, digits=1):
    return "—" if x is None else f"{x:.{digits}f}"


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
    ref = llamacpp_figures(os.path.join(a.shared, "docs", "BENCH.md"))
    with open("/proc/loadavg", encoding="ascii") as f:
        print(f"loadavg at start: {f.read().split()[0]}", file=sys.stderr)
    print(f"weights: {'read into huge pages (--no-mmap)' if a.no_mmap else 'mapped from the file'}\n")

    rows = []
    for shape in a.only.split(","):
        for t in TYPES:
            path = os.path.join(a.dir, f"{shape}-{t}.gguf")
            if not os.path.exists(path):
                subprocess.run([a.jielong, "synth"] + SHAPES[shape] + ["--type", t, "-o", path], check=True,
                               capture_output=True)
            res = bench(a.jielong, path, ["-p", "128", "-n", "32", "-t", "1,2", "-r", a.reps, "--bandwidth"] + load)
            for threads in (1, 2):
                pp = next(x for x in res if x["n_threads"] == threads and x["n_prompt"] > 0)
                tg = next(x for x in res if x["n_threads"] == threads and x["n_gen"] > 0)
                rows.append((shape, t, threads, pp, tg, ref.get((shape, t, threads))))
            print(f"done {shape} {t}", file=sys.stderr)

    print("| model | type | size MiB | threads | pp128 t/s | llama.cpp | ratio | tg32 t/s | llama.cpp | ratio "
          "| read GB/s | tg·size/bw | load ms | peak RSS MiB (weights + KV) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for shape, t, threads, pp, tg, r in rows:
        size = tg["model_size"] / 2**20
        rpp, rtg = (r if r else (None, None))
        print(f"| {shape} | {t} | {size:.0f} | {threads} | {pp['avg_ts']:.1f} ± {pp['stddev_ts']:.1f} | {fmt(rpp)} | "
              f"{fmt(pp['avg_ts'] / rpp if rpp else None, 2)} | {tg['avg_ts']:.2f} ± {tg['stddev_ts']:.2f} | {fmt(rtg)} | "
              f"{fmt(tg['avg_ts'] / rtg if rtg else None, 2)} | {tg['bandwidth_gbs']:.1f} | {tg['bandwidth_fraction']:.2f} | "
              f"{tg['load_ms']:.0f} | {tg['peak_rss_bytes'] / 2**20:.0f} ({size:.0f} + {tg['kv_cache_bytes'] / 2**20:.1f}) |")

    stories = os.path.join(a.shared, "models", "stories260K", "stories260K.gguf")
    if os.path.exists(stories):
        for threads in ("1", "2"):
            res = bench(a.jielong, stories, ["-p", "128", "-n", "256", "-t", threads, "-r", "10", "--kv", "f32"] + load)
            pp = next(x for x in res if x["n_prompt"] > 0)
            tg = next(x for x in res if x["n_gen"] > 0)
            print(f"\nstories260K, {threads} thread(s), f32 KV: pp128 {pp['avg_ts']:.0f} ± {pp['stddev_ts']:.0f} t/s, "
                  f"tg256 {tg['avg_ts']:.0f} ± {tg['stddev_ts']:.0f} t/s")
    q8 = os.path.join(a.dir, "sm135-q8_0.gguf")
    if os.path.exists(q8):
        sc = bench(a.jielong, q8, ["-p", "0", "-n", "8", "-t", "1", "-r", "1", "--backend", "scalar"] + load)[0]
        be = bench(a.jielong, q8, ["-p", "0", "-n", "8", "-t", "1", "-r", "3"] + load)[0]
        print(f"\nsm135 Q8_0 tg8, 1 thread: scalar {sc['avg_ts']:.2f} t/s, best {be['avg_ts']:.2f} t/s "
              f"(SIMD gain {be['avg_ts'] / sc['avg_ts']:.1f}x)")
    with open("/proc/loadavg", encoding="ascii") as f:
        print(f"loadavg at end: {f.read().split()[0]}", file=sys.stderr)


if __name__ == "__main__":
    main()
