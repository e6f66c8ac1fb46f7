#!/usr/bin/env bash
# Issue 33's convolutional Shapes twins, trained on a GPU machine in one call: open_clip's
# ModifiedResNet in PyTorch (tools/shapes_torch.py) on batches drawn by the project's own
# renderer (`clipag shapes batches`), each twin then converted to a q8 model folder by
# `clipag convert` and read zero-shot by `clipag shapes eval --prompts 0`, all there.
#
#   here:  tools/gpu-bench.sh pack                      (the stripped clipag in gpu/)
#          the wheels of open_clip_torch 3.3.0, ftfy and wcwidth in .whl/
#          (the device README's pip download line; the machine has torch, not open_clip)
#   there: tools/gpu-shapes-rn.sh                       (carry gpu and .whl; results in $OUT)
#
# ARCHS holds one architecture a line, "NAME OPTIONS..." (shapes_torch.py's --width,
# --layers, --size, --pretrain-steps, --finetune-steps): each is pre-trained once, all at
# once. TWINS holds one twin a line, "NAME PHASE OPTIONS..." (plain or robust; --epsilon,
# --noise, --finetune-steps): every architecture's twins start from its pre-training, all at
# once. What comes back: every twin's q8 folder, the zero-shot tables and the logs, in tars
# split under the transfer's 16 MB a file. The paintings are judged on the standard machine
# afterwards (`clipag shapes eval`), where docs/shapes.md's figures were made.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-shapes-rn}
work=${WORK:-/tmp/shapes-rn}
TRAIN_S=${TRAIN_S:-360}
ARCHS=${ARCHS:-"w16 --width 16 --layers 1,1,1,1"}
TWINS=${TWINS:-"plain plain
robust robust --epsilon 16 --noise 4"}
mkdir -p "$OUT" "$work"
start=$SECONDS

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
gunzip -kf gpu/clipag.gz && chmod +x gpu/clipag
bin=$PWD/gpu/clipag
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
python3 -c "import torch, open_clip; print('torch', torch.__version__, 'open_clip', open_clip.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU: the CPU')" || exit 1

# One architecture: its pre-training, then its twins side by side.
train_arch() {
  local arch=$1; shift
  local log=$work/$arch.log
  timeout "$TRAIN_S" python3 tools/shapes_torch.py --clipag "$bin" --out "$work/$arch" --phase pretrain --threads 2 "$@" >>"$log" 2>&1 || return 1
  while read -r twin phase options; do
    [ -n "$twin" ] || continue
    # shellcheck disable=SC2086 # options is a list of options
    timeout "$(( TRAIN_S - (SECONDS - start) > 10 ? TRAIN_S - (SECONDS - start) : 10 ))" python3 tools/shapes_torch.py --clipag "$bin" --out "$work/$arch" \
      --phase "$phase" --start "$work/$arch/pretrain" --name "$twin" --threads 2 "$@" $options >>"$work/$arch-$twin.log" 2>&1 &
  done <<<"$TWINS"
  wait
}

while read -r arch options; do
  [ -n "$arch" ] || continue
  # shellcheck disable=SC2086
  train_arch "$arch" $options &
done <<<"$ARCHS"
wait
echo "training ended after $((SECONDS - start)) s"

# Each finished twin as a q8 folder with the Shapes tokenizer; each robust twin read
# zero-shot beside its plain twin.
mkdir -p "$work/back/models" "$work/back/zero-shot"
while read -r arch _; do
  [ -n "$arch" ] || continue
  tail -n 2 "$work/$arch.log"
  while read -r twin _; do
    [ -n "$twin" ] || continue
    tail -n 2 "$work/$arch-$twin.log"
    [ -f "$work/$arch/$twin/open_clip_model.safetensors" ] || continue
    "$bin" convert "$work/$arch/$twin" --out "$work/back/models/$arch-$twin" --quant q8 \
      --tokenizer models/shapes-robust/tokenizer.json --name "Shapes RN $arch $twin" --license CC-BY-4.0
  done <<<"$TWINS"
done <<<"$ARCHS"
while read -r arch _; do
  [ -n "$arch" ] || continue
  while read -r twin _; do
    [ "$twin" != plain ] && [ -d "$work/back/models/$arch-$twin" ] && [ -d "$work/back/models/$arch-plain" ] || continue
    "$bin" shapes eval --plain "$work/back/models/$arch-plain" --robust "$work/back/models/$arch-$twin" \
      --prompts 0 --out "$work/back/zero-shot/$arch-$twin" >/dev/null 2>&1 &
  done <<<"$TWINS"
done <<<"$ARCHS"
wait
cp "$work"/*.log "$work/back/"
tar -cf - -C "$work" back | split -b 15000000 -d - "$OUT/shapes-rn.tar."
ls -l "$OUT"
echo "done after $((SECONDS - start)) s"
