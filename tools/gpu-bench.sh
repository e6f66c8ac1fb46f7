#!/usr/bin/env bash
# The GPU comparison of issue 7, prepared so that a session lent a GPU machine spends its
# device time measuring, not setting up (../shared/docs/toolchain.md, GPU section):
#
#   tools/gpu-bench.sh pack   here: the native clipag (stripped, gzipped) and Debian's Vulkan
#                             loader into gpu/ (ignored by git; send it with carry: ["gpu"])
#   tools/gpu-bench.sh loaders  there: unpack the loader into / (what `run` does first)
#   tools/gpu-bench.sh run    there: unpack, point Vulkan at the NVIDIA driver, then print
#                             burn's step and PyTorch's side by side, as JSON lines
#
# VIEWS (default 8,64) and ARCH (default vit-b-32) choose the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=gpu
VIEWS=${VIEWS:-8,64}
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$NVIDIA_ICD}
export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
ARCH=${ARCH:-vit-b-32}

case "${1:-}" in
  pack)
    bin=${CLIPAG_BIN:-${CLIPAG_CACHE:-$HOME/.cache/clipag-web}/target-native/release/clipag}
    [ -x "$bin" ] || { echo "build the native binary first (./build.sh test or cargo build --release)" >&2; exit 1; }
    rm -rf "$OUT" && mkdir -p "$OUT/debs"
    strip -o "$OUT/clipag" "$bin"
    gzip -9 "$OUT/clipag"
    # The Vulkan loader, and the GL/EGL dispatch libraries NVIDIA's Vulkan driver loads.
    (cd "$OUT/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
    du -sh "$OUT"
    ;;
  loaders)
    # There (as root, on a machine given back after the session): the packed libraries go
    # into / itself, as the device README says; in a private prefix wgpu found no adapter.
    # Elsewhere (a try on lavapipe) this machine's own loader serves, and / is left alone.
    if [ -f "$NVIDIA_ICD" ]; then
      for deb in "$OUT"/debs/*.deb; do dpkg -x "$deb" /; done
      ldconfig
    fi
    ;;
  run)
    "$0" loaders
    gunzip -kf "$OUT/clipag.gz" && chmod +x "$OUT/clipag"
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
    "$OUT/clipag" bench --arch "$ARCH" --views "$VIEWS" --backend gpu
    python3 tools/bench_pytorch.py --arch "$ARCH" --views "$VIEWS" --precision fp32
    ;;
  *)
    echo "usage: tools/gpu-bench.sh pack|loaders|run" >&2
    exit 2
    ;;
esac
