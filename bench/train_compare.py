#!/usr/bin/env python3
"""Training throughput beside llm.c: one command, one run, one machine.

Runs karpathy/llm.c's fp32 CPU trainer (train_gpt2.c with OpenMP, timed by
../shared/tools/llmc_bench.sh on a random-initialised checkpoint and random
tokens, no downloads) and bench_train's BM_TrainStep back to back, repetitions
interleaved (llm.c, jielong, then again), so load from elsewhere slows both
alike. llm.c's shape is GPT-2 small_L6C384 (6 layers, width 384, 6 heads,
vocabulary 50257, B 4, T 256); jielong's row beside it is the llama of the same
width, depth, heads and vocabulary (tied, SwiGLU 1024 in place of GELU 1536:
29.9M parameters against 30.4M). Both count model FLOPs the same way:
6·params + 12·layers·T·width per token. Also printed: the shipped shapes'
tokens/s, and every row's FLOP/s over bench_train's FMA probe (BM_FmaPeak's
loop, taken in jielong's half of each repetition). llm.c's own probe
(fma_peak.c, 16 chains) reads less than half of the peak on AVX2, where 16
chains do not fit the 16 registers; it is printed for reference only.

  LLMC_MIRROR   git dir of an llm.c mirror (used once to lay out --llmc-dir)

usage: bench/train_compare.py [--bench build/bench/bench_train]
       [--llmc-dir /tmp/llmc] [--reps 2] [--threads 2] [--llmc-steps 4]
"""
import argparse
import json
import os
import statistics
import sys

import benchlib as bl

HERE = os.path.dirname(os.path.abspath(__file__))
LLMC_SHAPE = "small_L6C384:6:6:384:4:256"
# BM_TrainStep args (width, layers, heads, kv heads, ff, vocabulary, B, T) -> label
JIELONG_ROWS = {
    "384/6/6/6/1024/50257/4/256": "llama 384×6, vocab 50257, B 4 (llm.c's shape)",
    "192/6/6/3/512/4096/16/256": "jielong-base (192×6, 6/3 heads, vocab 4096, B 16)",
    "384/6/6/6/1024/8192/16/256": "384×6, heads of 64, vocab 8192, B 16",
}


def llmc(args, steps):
    env = dict(os.environ, THREADS=str(args.threads), WAIT_IDLE_S="0", PEAK="1",
               SHAPES=f"{LLMC_SHAPE}:{steps}")
    out, _ = bl.run(["bash", os.path.join(args.shared, "tools", "llmc_bench.sh"), args.llmc_dir], env=env)
    recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    peak = next(r["gflops"] for r in recs if "fma_peak" in r)
    step = next(r for r in recs if r.get("shape") == LLMC_SHAPE.split(":")[0])
    return {"tok/s": step["tokens_per_s"], "gflops": step["gflops"], "own_peak": peak,
            "other_cpu": step.get("other_cpu_frac")}


def jielong(args):
    pattern = "BM_TrainStep<k::Best>/(" + "|".join(JIELONG_ROWS) + ")/"
    env = dict(os.environ, JIELONG_THREADS=str(args.threads))
    out, _ = bl.run([args.bench, "--benchmark_filter=" + pattern, "--benchmark_format=json"], env=env)
    rows = {}
    for b in json.loads(out)["benchmarks"]:
        key = "/".join(b["name"].split("/")[1:9])
        rows[key] = {"tok/s": b["tok/s"], "gflops": b["FLOP/s"] / 1e9, "of_peak": b["of_peak"]}
        rows["peak"] = b["FLOP/s"] / 1e9 / b["of_peak"]  # the probe every of_peak of this run divides by
    return rows


def span(xs):
    return f"{min(xs):.2f}–{max(xs):.2f}" if len(xs) > 1 else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/bench_train")
    ap.add_argument("--llmc-dir", default=os.environ.get("LLMC_DIR", "/tmp/llmc"))
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llmc-steps", type=int, default=4)
    args = ap.parse_args()

    load0 = bl.loadavg()
    started = bl.utc_now()
    peer, ours = [], []
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps}: llm.c ...", file=sys.stderr)
        peer.append(llmc(args, args.llmc_steps))
        print(f"repetition {rep + 1}/{args.reps}: jielong ...", file=sys.stderr)
        ours.append(jielong(args))
    load1 = bl.loadavg()

    print(f"{bl.cpu()}; {args.threads} threads; {started}; jielong {bl.git_commit(HERE)}; "
          f"load average {load0} before, {load1} after; llm.c other_cpu_frac "
          + ", ".join(f"{p['other_cpu']:.2f}" for p in peer if p["other_cpu"] is not None)
          + "; FMA probe " + ", ".join(f"{o['peak']:.1f}" for o in ours) + " GFLOP/s (fma_peak.c: "
          + ", ".join(f"{p['own_peak']:.1f}" for p in peer) + ")")
    print()
    print("| trainer, shape | tok/s | GFLOP/s | of FMA probe | × llm.c FLOP/s (range) |")
    print("|---|---:|---:|---:|---:|")
    med = statistics.median
    print(f"| llm.c GPT-2 384×6, vocab 50257, B 4 | {med([p['tok/s'] for p in peer]):,.1f} | "
          f"{med([p['gflops'] for p in peer]):.1f} | "
          f"{med([p['gflops'] / o['peak'] for p, o in zip(peer, ours)]):.2f} | 1 |")
    for key, label in JIELONG_ROWS.items():
        got = [o[key] for o in ours if key in o]
        if not got:
            continue
        ratios = [o[key]["gflops"] / p["gflops"] for o, p in zip(ours, peer) if key in o]
        print(f"| jielong {label} | {med([g['tok/s'] for g in got]):,.1f} | {med([g['gflops'] for g in got]):.1f} | "
              f"{med([g['of_peak'] for g in got]):.2f} | **{med(ratios):.2f}** ({span(ratios)}) |")


if __name__ == "__main__":
    main()
