#!/usr/bin/env bash
# Runs one fuzz target (libFuzzer through cargo-fuzz) for SECONDS (default 1800). Its corpus,
# fuzz/corpus/TARGET (not kept: it grows by thousands of inputs), starts from seeds made from
# the repository's fixtures and shipped models, and from the inputs fuzzing found before
# (fuzz/seeds/TARGET, kept). Crashes land in fuzz/artifacts/TARGET; each one found becomes a
# regression test. Targets: pickle torch safetensors folder tokenizer image convert.
#
#   tools/fuzz.sh pickle 600
#   tools/fuzz.sh all 300       # each target in turn
#
# cargo-fuzz wants a nightly compiler for its sanitizers; this uses none (`-s none`: coverage
# guidance alone, which stable rustc gives) and RUSTC_BOOTSTRAP for the rest. Memory is capped
# (-rss_limit_mb, -malloc_limit_mb): an input that allocates past it is a crash, as a bomb is.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(pickle torch safetensors folder tokenizer image convert)
target=${1:?usage: tools/fuzz.sh TARGET|all [SECONDS]}
seconds=${2:-1800}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/clipag-web/target-fuzz}
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz --version 0.13.1

seed() {
  local t=$1 dir=fuzz/corpus/$1
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir")" ] && return
  case $t in
    pickle) for f in tiny-clip tiny-rn; do
              python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); n=[x for x in z.namelist() if x.endswith('data.pkl')][0]; sys.stdout.buffer.write(z.read(n))" \
                tests/fixtures/$f/checkpoint.pt > "$dir/$f.pkl"; done ;;
    torch|convert) cp tests/fixtures/tiny-clip/checkpoint.pt "$dir/tiny-clip.pt" ;;
    safetensors) cp models/shapes-robust/weights.safetensors "$dir/shapes-robust.safetensors" ;;
    folder) for m in shapes-robust shapes-rn-robust; do
              { cat models/$m/manifest.json; printf '\0'; cat models/$m/tokenizer.json; } > "$dir/$m"; done ;;
    tokenizer) python3 -c "
import json, sys, hashlib
for case in json.load(open('tests/fixtures/tokenizer-cases.json'))['cases']:
    open(sys.argv[1] + '/' + hashlib.sha1(case['text'].encode()).hexdigest()[:16], 'w').write(case['text'])
" "$dir" ;;
    image) cp tests/fixtures/tiny-clip/image*.png "$dir/" ;;
  esac
  # What fuzzing found before (each also a regression test) seeds it too.
  if [ -d "fuzz/seeds/$t" ]; then cp fuzz/seeds/"$t"/* "$dir/"; fi
}

run() {
  local t=$1
  seed "$t"
  echo "==> fuzzing $t for $seconds s (corpus: $(ls fuzz/corpus/$t | wc -l) inputs)" >&2
  cargo fuzz run -s none --release "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -malloc_limit_mb=2048 -max_len=8388608 -print_final_stats=1
}

if [ "$target" = all ]; then
  for t in "${TARGETS[@]}"; do run "$t"; done
else
  run "$target"
fi
