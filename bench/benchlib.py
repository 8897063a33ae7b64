"""What the benchmark scripts share: the benchmark model shapes, running a
command that prints JSON, `jielong bench`, and a description of the machine
the figures were taken on (a figure means something only beside the machine
and the load it ran under)."""
import datetime
import json
import os
import subprocess
import sys

# The shapes of ../shared/docs/BENCH.md, written with seeded random weights
# (speed does not depend on the values).
SHAPES = {
    "sm135": ["--embd", "576", "--ff", "1536", "--layers", "30", "--heads", "9", "--kv-heads", "3",
              "--vocab-size", "32000", "--tied"],
    "tl1b": ["--embd", "2048", "--ff", "5632", "--layers", "22", "--heads", "32", "--kv-heads", "4",
             "--vocab-size", "32000"],
}
TYPES = ["f16", "q8_0", "q4_0"]

# CPU features that decide which kernels run (and, for llama.cpp, whether AMX does).
FEATURES = ["avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"]


class Failed(Exception):
    """A command that failed, with its last line of errors."""


def run(cmd, env=None, must=True):
    """(stdout, stderr) of a command. When it fails: exits naming it, or with
    must=False raises Failed."""
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if r.returncode == 0:
        return r.stdout, r.stderr
    if must:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    raise Failed((r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1])


def run_json(cmd, env=None, must=True):
    return json.loads(run(cmd, env, must)[0])


def jielong_bench(jielong, model, args, must=True):
    """`jielong bench -o json`: one record per test, llama-bench's fields."""
    return run_json([jielong, "bench", "-m", model, "-o", "json"] + args, must=must)


def test(records, threads, kind):
    """The pp (kind "pp") or tg (kind "tg") record of a thread count, or None."""
    for r in records:
        if r["n_threads"] == threads and (r["n_prompt"] > 0 if kind == "pp" else r["n_gen"] > 0):
            return r
    return None


def model(jielong, shape, typ, folder):
    """The file of a benchmark shape in a type, written once into folder (kept
    between runs: tl1b F16 is 2 GB). With $LLAMA_CPP_BIN the quantized types
    come from llama.cpp's own llama-quantize run on the F16 file, so their
    layout (Q4_0 with a Q6_K output.weight, sm135's tied embedding in Q8_0)
    is the peer's choice; without it `jielong synth --type` makes the same
    choices."""
    llama_bin = os.environ.get("LLAMA_CPP_BIN")
    if typ == "f16" or not llama_bin:
        path = os.path.join(folder, f"{shape}-{typ}.gguf")
        if not os.path.exists(path):
            run([jielong, "synth"] + SHAPES[shape] + ["--type", typ, "-o", path])
        return path
    path = os.path.join(folder, f"{shape}-{typ}-llama-quantize.gguf")
    if not os.path.exists(path):
        run([os.path.join(llama_bin, "llama-quantize"), model(jielong, shape, "f16", folder), path, typ.upper()])
    return path


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def cpu():
    """'<model name>, N CPUs (feature ...)' from /proc/cpuinfo."""
    name, flags, n = "unknown CPU", set(), 0
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                name, n = " ".join(value.split()), n + 1
            elif key == "flags":
                flags = set(value.split())
    have = [x for x in FEATURES if x in flags]
    return f"{name}, {n} CPUs ({' '.join(have) if have else 'no AVX-512'})"


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def git_commit(path="."):
    r = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                       check=False)
    return r.stdout.strip() or "unknown"


def fmt(x, digits=1):
    return "—" if x is None else f"{x:,.{digits}f}"
