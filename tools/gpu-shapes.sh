#!/usr/bin/env bash
# Issue 5's robust twins trained on a GPU machine in one call (../shared/docs/toolchain.md,
# GPU section), then the issue-7 step benchmark with the time left:
#
#   here:  tools/gpu-bench.sh pack          (the stripped native clipag and the Vulkan loader in gpu/)
#   there: tools/gpu-shapes.sh              (gpu carried; results under $OUT)
#
# RUNS holds one run a line, "NAME OPTIONS...": each trains the robust twin with `clipag
# shapes train --backend gpu --twins robust OPTIONS`, all runs at once, until done or
# TRAIN_S seconds. By default one run per width in WIDTHS (default "256 320"), named w256
# and so on: the shipped recipe (2250 clean steps from scratch, then 900 N-FGSM steps) with
# an image tower that wide. With FROM, a model folder (such as models/shapes-robust), each
# run starts from it as from a finished pre-training of PRETRAIN_STEPS (default 2250), as
# docs/shapes.md's fine-tunings of the shipped twin were made. What comes back, per run, is
# one tar (split into parts under the transfer's 16 MB a file): the q8 model folder when
# training finished, else the newest f32 checkpoint to resume from; and the log. The
# pictures are judged on the standard machine afterwards (`clipag shapes eval`), where the
# figures in docs/shapes.md were made.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-shapes}
WIDTHS=${WIDTHS:-256 320}
TRAIN_S=${TRAIN_S:-400}
BENCH_S=${BENCH_S:-200}
TRAIN_ARGS=${TRAIN_ARGS:-}
work=${WORK:-/tmp/shapes-gpu}
mkdir -p "$OUT" "$work"
start=$SECONDS

# shellcheck source=tools/gpu-env.sh
. tools/gpu-env.sh
gpu_unpack
bin=gpu/clipag
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
if ! $bin check --backend gpu >"$work/check.json"; then
  # No adapter: say what the loader saw, and spend no more of the lease.
  ls "$(dirname "$NVIDIA_ICD")" 2>&1; cat "$VK_DRIVER_FILES" 2>&1
  ldconfig -p | grep -i -E "vulkan|nvidia|glvnd|GLdispatch" | head -20
  VK_LOADER_DEBUG=error,warn $bin check --backend gpu 2>&1 | tail -20
  exit 1
fi
head -c 300 "$work/check.json"; echo

if [ -z "${RUNS:-}" ]; then
  RUNS=$(for width in $WIDTHS; do echo "w$width --vision-width $width"; done)
fi
while read -r name options; do
  [ -n "$name" ] || continue
  if [ -n "${FROM:-}" ]; then
    mkdir -p "$work/ck-$name/pretrain"
    cp "$FROM"/* "$work/ck-$name/pretrain/"
    echo "{\"step\":${PRETRAIN_STEPS:-2250}}" >"$work/ck-$name/pretrain/training.json"
  fi
  # shellcheck disable=SC2086 # options and TRAIN_ARGS are lists of options
  timeout "$TRAIN_S" $bin shapes train --backend gpu --twins robust $options $TRAIN_ARGS \
    --out "$work/models-$name" --checkpoints "$work/ck-$name" </dev/null >"$work/train-$name.log" 2>&1 &
done <<<"$RUNS"
wait
echo "training ended after $((SECONDS - start)) s"

while read -r name _; do
  [ -n "$name" ] || continue
  tail -n 4 "$work/train-$name.log"
  if [ -f "$work/models-$name/shapes-robust/manifest.json" ]; then
    what=(-C "$work/models-$name" shapes-robust)
  elif [ -f "$work/ck-$name/shapes-robust/training.json" ]; then
    what=(-C "$work/ck-$name" shapes-robust)
  else
    what=(-C "$work/ck-$name" pretrain)
  fi
  tar -cf - "${what[@]}" -C "$work" "train-$name.log" | split -b 15000000 -d - "$OUT/$name.tar."
done <<<"$RUNS"
ls -l "$OUT"

# The issue-7 rows docs/performance.md lacks: burn's step on the GPU, then PyTorch's.
if [ "$BENCH_S" -gt 0 ]; then
  {
    # burn's first steps compile its kernels: 20 s each was too little in the lease, 80 s was not.
    timeout "$((BENCH_S * 2 / 5))" $bin bench --arch shapes --views 8,64 --backend gpu --warmup 3 --steps 10
    timeout "$((BENCH_S * 2 / 5))" $bin bench --arch vit-b-32 --views 8,64 --backend gpu --warmup 2 --steps 5
    timeout "$((BENCH_S / 5))" python3 tools/bench_pytorch.py --arch vit-b-32 --views 8,64 --precision fp32
  } 2>&1 | tee "$OUT/bench.log"
fi
echo "done after $((SECONDS - start)) s"
