#!/usr/bin/env python3
"""A long native run with its memory sampled: `clipag generate --trace` for STEPS steps (the
built-in model, the CPU engine unless --backend says otherwise), the process's resident memory
(VmRSS) read every 100 steps. Prints one line per sample and, at the end, the growth after the
warm-up (the first 10% of the steps): what docs/reliability.md reports.

    python3 tools/soak.py --steps 10000 [--bin PATH] [--backend cpu] [-- EXTRA generate ARGS]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--bin", default=os.path.expanduser("~/.cache/clipag-web/target-native/release/clipag"))
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    out = os.path.join(tempfile.mkdtemp(prefix="clipag-soak-"), "out.png")
    command = [args.bin, "generate", "--backend", args.backend, "--prompt", "a large red circle on a blue background",
               "--steps", str(args.steps), "--trace", "--out", out, *args.extra]
    print(" ".join(command), file=sys.stderr)
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples = []
    for line in process.stdout:
        try:
            report = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = report.get("step")
        if isinstance(step, int) and report.get("steps") and step % args.every == 0:
            samples.append((step, rss_mb(process.pid)))
            print(f"step {step:6d}  rss {samples[-1][1]:8.1f} MB  {time.time() - started:7.0f} s", flush=True)
    if process.wait() != 0:
        sys.exit(f"clipag exited with {process.returncode}")
    warm = [mb for step, mb in samples if step <= args.steps // 10]
    after = [mb for step, mb in samples if step > args.steps // 10]
    if warm and after:
        print(f"after warm-up (step {args.steps // 10}): {warm[-1]:.1f} MB; from then on min {min(after):.1f}, "
              f"max {max(after):.1f}, last {after[-1]:.1f} MB: growth {max(after) - warm[-1]:+.1f} MB "
              f"over {args.steps - args.steps // 10} steps ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
