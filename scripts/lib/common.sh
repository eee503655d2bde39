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
