#!/usr/bin/env python3
"""jielong beside llama.cpp and llama2.c: one run, one machine, the same files.

Runs `jielong bench` and the peers on the same model files with the same
thread counts, repetitions interleaved (jielong, llama.cpp, llama2.c, then
again), so a minute in which a neighbour loads the machine slows every engine
alike. Each repetition is one process per engine and thread count
(`llama-bench -r 1`, `jielong bench -r 1`, each with its own untimed warm-up;
llama2.c's `run`/`runq` time their own loop); the table holds the medians and
the ratio jielong / peer of the medians, with the range of the ratios of the
pairs run back to back. The CPU, the date and the load average before and after
head the table.

  LLAMA_CPP_BIN   a llama.cpp build's bin/ (llama-bench; its llama-quantize makes
                  the Q8_0/Q4_0 benchmark models from jielong's F16 ones)
  LLAMA2C_DIR     a llama2.c checkout with `run` and `runq` built
                  (gcc -Ofast -fopenmp -march=native run.c -lm -o run; runq.c likewise)

Models: the synthetic GGUF files of ../shared/models/synth; stories260K as
GGUF (F32, beside llama.cpp) and as llama2.c checkpoints (F32 beside `run`,
Q8_0 beside `runq`); the sm135 and tl1b shapes (benchlib.model), written
once into --dir. Tests: pp128 and tg32 (stories260K: tg256). The KV cache is
F32 beside llama2.c (which keeps it so), F16 otherwise (llama-bench's
default; it offers no F32 cache). llama2.c has no batched prompt path, so its
rows have no pp figure; its tok/s counts the steps after the first.

usage: LLAMA_CPP_BIN=... LLAMA2C_DIR=... bench/compare.py [--jielong build/jielong]
       [--dir /tmp/jielong-bench] [--shared ../shared] [--reps 5] [--threads 1,2]
       [--models synth,stories,sm135,tl1b]
"""
import argparse
import glob
import os
import re
import statistics
import sys

import benchlib as bl

BUILD = {}  # peer -> the build it reported


class Row:
    """One model file (or, for llama2.c, checkpoint) and how each engine runs it."""

    def __init__(self, name, typ, path, n_prompt, n_gen, kv="f16", llamacpp=False, llama2c=None, tok=None):
        self.name, self.typ, self.path = name, typ, path
        self.n_prompt, self.n_gen, self.kv = n_prompt, n_gen, kv
        self.llamacpp = llamacpp  # llama-bench reads the same file
        self.llama2c = llama2c    # "run" or "runq" reads the same checkpoint
        self.tok = tok            # llama2.c tokenizer file
        self.size = None          # weight bytes, as llama-bench counts them
        self.ts = {}              # (engine, threads, "pp"|"tg") -> [tokens/s of each repetition]
        self.failed = {}          # engine -> why it could not run this file


def models(a):
    rows = []
    want = a.models.split(",")
    synth_dir = os.path.join(a.shared, "models", "synth")
    if "synth" in want:
        for path in sorted(glob.glob(os.path.join(synth_dir, "synth-*.gguf"))):
            m = re.match(r"synth-(\w+?)-(\w+)\.gguf", os.path.basename(path))
            rows.append(Row(f"synth-{m.group(1)}", m.group(2), path, 128, 32, llamacpp=True))
    st = os.path.join(a.shared, "models", "stories260K")
    if "stories" in want and os.path.isdir(st):
        tok = os.path.join(st, "tok512.bin")
        rows.append(Row("stories260K", "f32", os.path.join(st, "stories260K.gguf"), 128, 256, llamacpp=True))
        rows.append(Row("stories260K .bin", "f32", os.path.join(st, "stories260K.bin"), 0, 256, "f32",
                        llama2c="run", tok=tok))
        rows.append(Row("stories260K .bin", "q8_0", os.path.join(st, "stories260K_q8.bin"), 0, 256, "f32",
                        llama2c="runq", tok=tok))
    for shape in bl.SHAPES:
        if shape not in want:
            continue
        for t in bl.TYPES:
            rows.append(Row(shape, t, bl.model(a.jielong, shape, t, a.dir), 128, 32, llamacpp=True))
    return rows


def tests(row):
    return (["pp"] if row.n_prompt else []) + ["tg"]


def run_jielong(a, row, threads):
    args = ["-p", str(row.n_prompt), "-n", str(row.n_gen), "-t", str(threads), "-r", "1", "--kv", row.kv]
    res = bl.jielong_bench(a.jielong, row.path, args, must=False)
    row.size = row.size or bl.test(res, threads, "tg")["model_size"]
    return {k: bl.test(res, threads, k)["avg_ts"] for k in tests(row)}


def run_llamacpp(bin_dir, row, threads):
    cmd = [os.path.join(bin_dir, "llama-bench"), "-m", row.path, "-p", str(row.n_prompt), "-n", str(row.n_gen),
           "-t", str(threads), "-r", "1", "-ctk", row.kv, "-ctv", row.kv, "-o", "json"]
    res = bl.run_json(cmd, must=False)
    BUILD["llama.cpp"] = res[0].get("build_commit", "unknown")
    row.size = row.size or bl.test(res, threads, "tg")["model_size"]
    return {k: bl.test(res, threads, k)["avg_ts"] for k in tests(row)}


def run_llama2c(dir_, row, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [os.path.join(dir_, row.llama2c), row.path, "-z", row.tok, "-t", "0", "-n", str(row.n_gen)]
    m = re.search(r"achieved tok/s: ([\d.]+)", bl.run(cmd, env=env, must=False)[1])
    if not m:
        raise bl.Failed("no 'achieved tok/s' line")
    return {"tg": float(m.group(1))}


def measure(a, rows, threads, llama_bin, llama2c_dir):
    """One repetition: every row and thread count, each engine once in turn."""
    for row in rows:
        for t in threads:
            runs = [("jielong", lambda: run_jielong(a, row, t))]
            if row.llamacpp and llama_bin:
                runs.append(("llama.cpp", lambda: run_llamacpp(llama_bin, row, t)))
            if row.llama2c and llama2c_dir:
                runs.append(("llama2.c", lambda: run_llama2c(llama2c_dir, row, t)))
            for engine, go in runs:
                if engine in row.failed:
                    continue
                try:
                    for kind, ts in go().items():
                        row.ts.setdefault((engine, t, kind), []).append(ts)
                except bl.Failed as e:
                    row.failed[engine] = str(e)


def cell(row, t, engine, kind):
    """(median, Markdown) of one engine's figure, or (None, '—')."""
    ts = row.ts.get((engine, t, kind))
    if not ts:
        return None, "—"
    return statistics.median(ts), bl.fmt(statistics.median(ts), 0 if statistics.median(ts) >= 1000 else 1)


def ratio(row, t, peer, kind):
    """jielong / peer of the medians, and the range over back-to-back pairs."""
    ours, theirs = row.ts.get(("jielong", t, kind)), row.ts.get((peer, t, kind))
    if not ours or not theirs:
        return "—"
    pairs = [x / y for x, y in zip(ours, theirs)]
    return (f"**{statistics.median(ours) / statistics.median(theirs):.2f}** "
            f"({min(pairs):.2f}–{max(pairs):.2f})")


def table(rows, threads, peers, out):
    head = ["model", "type", "MiB", "threads", "pp jielong"]
    head += ["pp llama.cpp", "pp ×"] if "llama.cpp" in peers else []
    head += ["tg jielong"] + [x for p in peers for x in (f"tg {p}", f"tg × {p}")]
    print("| " + " | ".join(head) + " |", file=out)
    print("|" + "---|" * len(head), file=out)
    for row in rows:
        for t in threads:
            size = f"{row.size / 2**20:.1f}" if row.size else "—"
            cells = [row.name, row.typ, size, str(t), cell(row, t, "jielong", "pp")[1]]
            if "llama.cpp" in peers:
                cells += [cell(row, t, "llama.cpp", "pp")[1], ratio(row, t, "llama.cpp", "pp")]
            cells.append(cell(row, t, "jielong", "tg")[1])
            for p in peers:
                cells += [cell(row, t, p, "tg")[1], ratio(row, t, p, "tg")]
            print("| " + " | ".join(cells) + " |", file=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jielong", default="build/jielong")
    ap.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "jielong-bench"))
    ap.add_argument("--shared", default=os.environ.get("JIELONG_SHARED", "../shared"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="synth,stories,sm135,tl1b")
    a = ap.parse_args()
    llama_bin, llama2c_dir = os.environ.get("LLAMA_CPP_BIN"), os.environ.get("LLAMA2C_DIR")
    if not llama_bin and not llama2c_dir:
        sys.exit("set LLAMA_CPP_BIN (a llama.cpp build's bin/) and/or LLAMA2C_DIR (llama2.c with run, runq built)")
    peers = [p for p, on in (("llama.cpp", llama_bin), ("llama2.c", llama2c_dir)) if on]
    os.makedirs(a.dir, exist_ok=True)
    rows = models(a)
    load0, start = bl.loadavg(), bl.utc_now()
    threads = [int(t) for t in a.threads.split(",")]
    for rep in range(a.reps):
        measure(a, rows, threads, llama_bin, llama2c_dir)
        print(f"after repetition {rep + 1} of {a.reps} ({bl.utc_now()}), load average {bl.loadavg()}:",
              file=sys.stderr)
        table(rows, threads, peers, sys.stderr)

    print(f"CPU: {bl.cpu()}")
    print(f"{start} to {bl.utc_now()}, jielong {bl.git_commit()}"
          + "".join(f", {p} build {b}" for p, b in BUILD.items() if b != "unknown"))
    print(f"load average (1, 5, 15 min) before: {load0}; after: {bl.loadavg()}")
    print(f"median of {a.reps} interleaved repetitions, tokens/s; ratio = jielong / peer "
          "(range over back-to-back pairs)\n")
    table(rows, threads, peers, sys.stdout)
    print("\npp: a prompt of 128 tokens; tg: 32 generated tokens (stories260K: 256)")
    for row in rows:
        for engine, why in row.failed.items():
            print(f"{engine} did not run {row.name} {row.typ}: {why}")


if __name__ == "__main__":
    main()
