# Shared by scripts/*: logging, the build cache outside the clone, idempotent installs.
# Source it; do not run it.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian/target}"
export MERIDIAN_VENV="${MERIDIAN_VENV:-$HOME/.cache/meridian/venv}"
export MERIDIAN_BIN_DIR_DEBUG="$CARGO_TARGET_DIR/debug"
export MERIDIAN_BIN_DIR_RELEASE="$CARGO_TARGET_DIR/release"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# apt packages, installed only when missing.
ensure_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
  if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    say "adding the wasm32-unknown-unknown target (the shared core must build for Workers)"
    rustup target add wasm32-unknown-unknown
  fi
}

# A Python venv outside the clone with the pinned test requirements.
ensure_venv() {
  local req="$ROOT/tests/sdk/requirements.txt" stamp="$MERIDIAN_VENV/.requirements"
  if [ ! -x "$MERIDIAN_VENV/bin/python" ]; then
    say "creating Python venv at $MERIDIAN_VENV"
    python3 -m venv "$MERIDIAN_VENV"
  fi
  if ! cmp -s "$req" "$stamp"; then
    say "installing Python test requirements (openai SDK, pytest)"
    "$MERIDIAN_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

# Waits for a process's stdout file to contain "listening on URL"; prints URL.
wait_listening() {
  local file="$1" pid="$2" deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if grep -q 'listening on ' "$file" 2>/dev/null; then
      grep -o 'listening on [^ ]*' "$file" | head -1 | cut -d' ' -f3
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited; see $file" >&2; return 1; }
    sleep 0.05
  done
  echo "timed out waiting for $file" >&2
  return 1
}

# --- the edge Worker -------------------------------------------------------------
export MERIDIAN_NODE="${MERIDIAN_NODE:-$HOME/.cache/meridian/node}"
export MERIDIAN_WORKERD="${MERIDIAN_WORKERD:-$MERIDIAN_NODE/node_modules/.bin/workerd}"
WORKER_BUILD_VERSION=0.8.7

# wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock, worker-build, and
# wrangler + workerd from npm (edge/tools), all cached outside the clone.
ensure_edge_toolchain() {
  ensure_rust
  command -v npm >/dev/null || ensure_apt nodejs npm
  local wb
  wb="$(awk '/^name = "wasm-bindgen"$/ {getline; print}' "$ROOT/Cargo.lock" | cut -d'"' -f2)"
  if [ "$("$HOME/.cargo/bin/wasm-bindgen" --version 2>/dev/null)" != "wasm-bindgen $wb" ]; then
    say "installing wasm-bindgen-cli $wb (matches Cargo.lock) from crates.io"
    cargo install -q wasm-bindgen-cli --version "=$wb"
  fi
  if ! "$HOME/.cargo/bin/worker-build" --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
    say "installing worker-build $WORKER_BUILD_VERSION from crates.io"
    cargo install -q worker-build --version "=$WORKER_BUILD_VERSION"
  fi
  if ! cmp -s "$ROOT/edge/tools/package-lock.json" "$MERIDIAN_NODE/package-lock.json" || [ ! -x "$MERIDIAN_WORKERD" ]; then
    say "installing wrangler and workerd from npm into $MERIDIAN_NODE"
    mkdir -p "$MERIDIAN_NODE"
    cp "$ROOT/edge/tools/package.json" "$ROOT/edge/tools/package-lock.json" "$MERIDIAN_NODE/"
    (cd "$MERIDIAN_NODE" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# Builds the Worker into edge/build (index.js + index_bg.wasm).
build_edge() {
  ensure_edge_toolchain
  say "building the edge Worker (wasm32, worker-build)"
  (cd "$ROOT/edge" && WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen" "$HOME/.cargo/bin/worker-build" --release --no-opt >"$CARGO_TARGET_DIR/edge-build.log" 2>&1) \
    || { cat "$CARGO_TARGET_DIR/edge-build.log" >&2; return 1; }
}
