#!/usr/bin/env bash
# clipag-web: build, serve and test. Installs what a fresh machine lacks, then works.
#
#   ./build.sh          build the static site into dist/
#   ./build.sh serve    build (if anything changed), then serve dist/ on 127.0.0.1:${PORT:-8080}
#   ./build.sh test     build, then run every test: native (cargo) and browser (headless Chromium)
#
# Build outputs are kept under $CLIPAG_CACHE (default ~/.cache/clipag-web) so that a fresh
# clone on the same machine reuses compiled dependencies; nothing depends on them existing.
set -euo pipefail
cd "$(dirname "$0")"

CACHE_DIR=${CLIPAG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipag-web}
WASM_TARGET_DIR=$CACHE_DIR/target-wasm
NATIVE_TARGET_DIR=$CACHE_DIR/target-native
DIST=dist

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "root is needed to run: $*"; fi
}

APT_UPDATED=
# Installs those of the named Debian packages that are missing.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "these packages are missing and there is no apt-get: ${missing[*]}"
  log "installing ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The Rust that builds wasm32: rustup's, where the wasm32 target is installed; otherwise
# Debian's Rust with its standard library sources, building std as part of the build
# (docs/build.md says why).
setup_wasm_toolchain() {
  WASM_RUSTFLAGS='--cfg getrandom_backend="wasm_js"'
  if command -v rustup >/dev/null &&
     rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    WASM_ENV=(RUSTFLAGS="$WASM_RUSTFLAGS")
    WASM_CARGO=(cargo build --profile wasm-release --lib --target wasm32-unknown-unknown)
  elif command -v apt-get >/dev/null || [ -x /usr/bin/cargo ]; then
    apt_install rustc-web cargo-web rust-web-src lld-19
    WASM_ENV=(PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 RUSTFLAGS="$WASM_RUSTFLAGS"
              CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld)
    WASM_CARGO=(/usr/bin/cargo build --profile wasm-release --lib --target wasm32-unknown-unknown
                -Zbuild-std=std,panic_abort)
  else
    die "no Rust for wasm32: run 'rustup target add wasm32-unknown-unknown'"
  fi
}

# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock.
setup_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print }' Cargo.lock)
  [ -n "$want" ] || die "Cargo.lock names no wasm-bindgen"
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $want" ]; then
    log "installing wasm-bindgen-cli $want (a few minutes, once)"
    cargo install -q wasm-bindgen-cli --version "$want"
  fi
}

setup_node() {
  command -v node >/dev/null || apt_install nodejs npm
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing JavaScript build and test tools (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

# Shrinks the module with binaryen's wasm-opt from npm (Debian's binaryen 108 is too old for
# the reference-types tables wasm-bindgen emits: its output fails to instantiate). The
# result is cached by the input's hash: wasm-opt on a large module takes minutes, and most
# rebuilds do not change the wasm.
shrink_wasm() {
  local input=$1 output=$2 key cached
  key=$(sha256sum "$input" | cut -c1-32)
  cached=$CACHE_DIR/wasm-opt/$key.wasm
  if [ ! -f "$cached" ]; then
    log "optimising the wasm module (wasm-opt)"
    mkdir -p "$CACHE_DIR/wasm-opt"
    rm -f "$CACHE_DIR"/wasm-opt/*.wasm
    node node_modules/binaryen/bin/wasm-opt -O2 --strip-debug --strip-producers \
      --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$input" -o "$cached.tmp"
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" "$output"
}

build_site() {
  setup_wasm_toolchain
  setup_wasm_bindgen
  setup_node
  log "building the engine for wasm32"
  env "${WASM_ENV[@]}" CARGO_TARGET_DIR="$WASM_TARGET_DIR" "${WASM_CARGO[@]}"

  local staging=$DIST.tmp
  rm -rf "$staging"
  mkdir -p "$staging/pkg"
  wasm-bindgen --target web --no-typescript --out-dir "$staging/pkg" \
    "$WASM_TARGET_DIR/wasm32-unknown-unknown/wasm-release/clipag.wasm"
  shrink_wasm "$staging/pkg/clipag_bg.wasm" "$staging/pkg/clipag_bg.wasm.opt"
  mv "$staging/pkg/clipag_bg.wasm.opt" "$staging/pkg/clipag_bg.wasm"
  cp index.html "$staging/"
  cp -r www "$staging/"
  # The built-in models, and their list for the page's picker.
  mkdir -p "$staging/models"
  cp models/index.json "$staging/models/"
  for model in $(sed -n 's/.*"path": *"models\/\([^"\/]*\)\/".*/\1/p' models/index.json); do
    cp -r "models/$model" "$staging/models/"
  done
  # The service worker lives at the site's root (its scope) and names its cache after the
  # shell's contents, so each build replaces the last.
  local version
  version=$(cat "$staging"/index.html "$staging"/www/* "$staging"/pkg/* "$staging"/models/index.json | sha256sum | cut -c1-16)
  sed "s/^const VERSION = 'development';/const VERSION = '$version';/" www/sw.js > "$staging/sw.js"
  rm -rf "$DIST"
  mv "$staging" "$DIST"
  log "site written to $DIST/ (wasm: $(du -h "$DIST/pkg/clipag_bg.wasm" | cut -f1))"
}

build_native() {
  log "building the native command line"
  CARGO_TARGET_DIR="$NATIVE_TARGET_DIR" cargo build --release --workspace --bins
}

run_tests() {
  # lavapipe gives native wgpu a Vulkan device on the CPU; Chromium runs the page.
  apt_install mesa-vulkan-drivers chromium
  setup_node
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$CACHE_DIR/xdg-runtime}
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  build_native
  log "native tests"
  CARGO_TARGET_DIR="$NATIVE_TARGET_DIR" cargo test --release --workspace
  log "browser tests (headless Chromium, WebGPU on SwiftShader)"
  CLIPAG_BIN="$NATIVE_TARGET_DIR/release/clipag" CLIPAG_DIST="$DIST" \
    node --test --test-concurrency=1 tests/browser/
}

case "${1:-build}" in
  build) build_site ;;
  serve) build_site; command -v node >/dev/null || apt_install nodejs; exec node tools/serve.mjs "$DIST" "${PORT:-8080}" ;;
  test) build_site; run_tests ;;
  *) die "usage: ./build.sh [build|serve|test]" ;;
esac
