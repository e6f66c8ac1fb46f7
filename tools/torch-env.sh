#!/usr/bin/env bash
# A CPU Python environment with PyTorch and open_clip 3.3.0, for what the project runs
# against open_clip by hand: tools/make_fixtures.py (the tests' reference fixtures),
# tools/shapes_torch.py (the convolutional twins' training) and tools/bench_pytorch.py.
# Nothing in ./build.sh needs it. Prints the interpreter's path.
set -euo pipefail
VENV="${CLIPAG_TORCH_VENV:-$HOME/.cache/clipag-web/venv-torch}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import torch, open_clip, safetensors, PIL" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet torch open_clip_torch==3.3.0 safetensors pillow numpy >&2
fi
echo "$VENV/bin/python"
