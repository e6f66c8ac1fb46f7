#!/usr/bin/env bash
# The GPU comparison of issue 7, prepared so that a session lent a GPU machine spends its
# device time measuring, not setting up (../shared/docs/toolchain.md, GPU section):
#
#   tools/gpu-bench.sh pack   here: the native clipag (stripped, gzipped) and Debian's Vulkan
#                             loader into gpu/ (ignored by git; send it with carry: ["gpu"])
#   tools/gpu-bench.sh run    there: unpack (tools/gpu-env.sh), point Vulkan at the NVIDIA
#                             driver, then print
#                             burn's step and PyTorch's side by side, as JSON lines
#
# VIEWS (default 8,64) and ARCH (default vit-b-32) choose the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=gpu
VIEWS=${VIEWS:-8,64}
# shellcheck source=tools/gpu-env.sh
. tools/gpu-env.sh
ARCH=${ARCH:-vit-b-32}

case "${1:-}" in
  pack)
    bin=${CLIPAG_BIN:-${CLIPAG_CACHE:-$HOME/.cache/clipag-web}/target-native/release/clipag}
    [ -x "$bin" ] || { echo "build the native binary first (./build.sh test or cargo build --release -p clipag-cli)" >&2; exit 1; }
    rm -rf "$OUT" && mkdir -p "$OUT/debs"
    strip -o "$OUT/clipag" "$bin"
    gzip -9 "$OUT/clipag"
    # The Vulkan loader, and the GL/EGL dispatch libraries NVIDIA's Vulkan driver loads.
    (cd "$OUT/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
    du -sh "$OUT"
    ;;
  run)
    gpu_unpack
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
    "$OUT/clipag" bench --arch "$ARCH" --views "$VIEWS" --backend gpu
    python3 tools/bench_pytorch.py --arch "$ARCH" --views "$VIEWS" --precision fp32
    ;;
  *)
    echo "usage: tools/gpu-bench.sh pack|run" >&2
    exit 2
    ;;
esac
