#!/usr/bin/env bash
# Painting recipes for the Shapes twins compared on a GPU machine in one call: many
# `clipag shapes eval --backend gpu` processes side by side, one per recipe and seed, each
# painting held-out prompts with both twins of a pair and judging them, until a deadline.
# The standard machine's two cores take 80 minutes for one 100-prompt seed; a recipe sweep
# here should fit in one call (not yet shown: below).
#
#   here:  CLIPAG_BIN=path/to/clipag tools/gpu-bench.sh pack     (the stripped clipag in gpu/)
#   there: tools/gpu-shapes-eval.sh                               (carry gpu; results in $OUT)
#
# RECIPES holds one recipe a line, "NAME PAIR OPTIONS..." (PAIR: rn16, the RN twins with
# their recommended views; rn, the same without --views, for a recipe that names its own;
# vit, the ViT twins; OPTIONS are `shapes eval`'s). Each recipe runs in PARALLEL processes
# (seeds 0, 1, ...), each painting PROMPTS prompts for its seed, then the next seed
# PARALLEL on, while DEADLINE seconds have not passed; a chunk still running at STOP seconds
# is killed and lost. What comes back: one tar of every finished chunk's tables.md and
# pictures.csv and every chunk's log, and the call's log. Join them with the pictures.csv
# columns (docs/shapes.md says how the figures were read).
#
# Not yet proven: its first call (2026-12-04, eight recipes x 2 processes, 10 prompts a
# chunk, 60 to 240 steps) finished no chunk in 470 s, and the recipe that named --views
# twice failed at once and (before the fix below) started again and again. With no timings
# back, the next call should run fewer processes (PARALLEL=1, four recipes), PROMPTS=4,
# and read the chunks' logs (each eval prints a line per prompt painted), now in the tar.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-shapes-eval}
work=${WORK:-/tmp/shapes-eval}
PROMPTS=${PROMPTS:-10}
PARALLEL=${PARALLEL:-2}
DEADLINE=${DEADLINE:-400}
STOP=${STOP:-480}
# The RN twins' recommended views, less their number (a recipe names --views itself, or
# takes 16: clap refuses a flag given twice).
RN="--size 96 --patch-views 0 --cutout false --edge-padding"
RECIPES=${RECIPES:-"rn60 rn16 --steps 60"}
mkdir -p "$OUT" "$work"
# shellcheck source=tools/gpu-env.sh
. tools/gpu-env.sh
gpu_unpack
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
gpu/clipag check --backend gpu | cut -c 1-160 || exit 1

pair() {
  case $1 in
    rn) echo "--plain models/shapes-rn-plain --robust models/shapes-rn-robust $RN" ;;
    rn16) echo "--plain models/shapes-rn-plain --robust models/shapes-rn-robust $RN --views 16" ;;
    vit) echo "--plain models/shapes-plain --robust models/shapes-robust" ;;
  esac
}

# One process: seeds first, first + PARALLEL, ... while there is time to start one.
worker() {
  local name=$1 first=$2; shift 2
  local seed=$first
  while [ "$SECONDS" -lt "$DEADLINE" ]; do
    local dir=$work/$name/s$seed
    local t0=$SECONDS
    # shellcheck disable=SC2068
    if gpu/clipag shapes eval "$@" --backend gpu --prompts "$PROMPTS" --seeds 1 --first-seed "$seed" --out "$dir" >"$dir.log" 2>&1; then
      echo "$name seed $seed: $PROMPTS prompts in $((SECONDS - t0)) s"
    else
      echo "$name seed $seed failed: $(tail -2 "$dir.log")"
      return
    fi
    seed=$((seed + PARALLEL))
  done
}

while read -r name kind options; do
  [ -n "$name" ] || continue
  mkdir -p "$work/$name"
  for ((i = 0; i < PARALLEL; i++)); do
    # shellcheck disable=SC2086
    worker "$name" "$i" $(pair "$kind") $options &
  done
done <<<"$RECIPES"

while [ "$SECONDS" -lt "$STOP" ] && [ -n "$(jobs -r)" ]; do sleep 5; done
pkill -f "gpu/clipag shapes eval" && echo "stopped the chunks still running at $SECONDS s"
wait
(cd "$work" && find . -name pictures.csv -o -name tables.md -o -name "*.log" | tar -czf "$OUT/results.tgz" -T -)
echo "finished chunks: $(cd "$work" && find . -name pictures.csv | wc -l), in $SECONDS s"
