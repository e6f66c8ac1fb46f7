#!/usr/bin/env python3
"""A long native run with its memory sampled: `clipag generate --trace` for STEPS steps (the
built-in model, the CPU engine unless --backend says otherwise), the process's resident memory
(VmRSS) read every 100 steps. Prints one line per sample and, at the end, the growth after the
warm-up (the first 10% of the steps): what docs/reliability.md reports.

With --eval PROMPTS it runs `clipag shapes eval` on the shipped Shapes twins instead (PROMPTS
held-out prompts, one seed: two paintings a prompt) and reads the memory after each prompt.

    python3 tools/soak.py --steps 10000 [--bin PATH] [--backend cpu] [-- EXTRA generate ARGS]
    python3 tools/soak.py --eval 50 [--bin PATH] [--backend cpu]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def rss_mb(pid, field="VmRSS"):
    """The process's resident memory now (VmRSS), or its peak so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--bin", default=os.path.expanduser("~/.cache/clipag-web/target-native/release/clipag"))
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--eval", type=int, metavar="PROMPTS")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    if args.eval:
        return soak_eval(args)
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


def soak_eval(args):
    out = tempfile.mkdtemp(prefix="clipag-soak-eval-")
    command = [args.bin, "shapes", "eval", "--plain", "models/shapes-plain", "--robust", "models/shapes-robust",
               "--prompts", str(args.eval), "--seeds", "1", "--backend", args.backend, "--out", out, *args.extra]
    print(" ".join(command), file=sys.stderr)
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    for line in process.stderr:
        if line.startswith("painted "):
            prompts = int(line.split()[1].split("/")[0])
            samples.append((2 * prompts, rss_mb(process.pid)))
            # The peak too: the judge's and zero-shot's phase comes before the first painting.
            print(f"paintings {samples[-1][0]:5d}  rss {samples[-1][1]:8.1f} MB  peak {rss_mb(process.pid, 'VmHWM'):8.1f} MB  "
                  f"{time.time() - started:7.0f} s", flush=True)
    if process.wait() != 0:
        sys.exit(f"clipag exited with {process.returncode}")
    if len(samples) > 2:
        first, last = samples[len(samples) // 10], samples[-1]
        print(f"from {first[0]} to {last[0]} paintings: {first[1]:.1f} to {last[1]:.1f} MB, "
              f"{(last[1] - first[1]) / (last[0] - first[0]):+.2f} MB a painting ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
