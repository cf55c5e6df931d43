#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or this one:
#   1. installs what the tests talk to when it is missing (an SMTP server for the tests
#      to read mail back from, Redis, RabbitMQ, a MongoDB-compatible server, Node.js for
#      the official Socket.IO client, Chromium for the browser tests, nginx and Caddy for
#      the reverse-proxy tests, schemathesis for the OpenAPI conformance test,
#      systemd-analyze, podman and podman-compose for the packaging checks) and starts
#      the servers that are not answering;
#   2. checks formatting and lints;
#   3. runs every test (cargo nextest when installed, else cargo test).
# Needs a Rust toolchain (https://rustup.rs) and root or sudo for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=packaging/lib.sh
. packaging/lib.sh
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local port=$1 what=$2 tries=${3:-120}
  for _ in $(seq "$tries"); do port_open "$port" && return 0; sleep 0.5; done
  echo "$what did not start listening on port $port" >&2
  return 1
}

command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs first" >&2; exit 1; }

missing=()
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v chromium >/dev/null || missing+=(chromium)
command -v nginx >/dev/null || missing+=(nginx)
command -v caddy >/dev/null || missing+=(caddy)
# systemd-analyze scores the unit's sandboxing (tests/packaging.rs).
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v podman >/dev/null || missing+=(podman)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! port_open 6379; then
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/confab-tests.log
  wait_port 6379 Redis
fi
if ! port_open 5672; then
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached
  wait_port 5672 RabbitMQ 240
fi

# MongoDB: a real one via CONFAB_TEST_MONGO_URI, else whatever answers on 27017, else
# SecantusDB (a MongoDB-compatible server; GPL, a test tool only, never linked into
# confab) from PyPI in a cached virtualenv.
if [ -z "${CONFAB_TEST_MONGO_URI:-}" ] && ! port_open 27017; then
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/confab-tests/secantus"
  if [ ! -x "$venv/bin/secantusd-py" ]; then
    say "installing SecantusDB (MongoDB-compatible test server) into $venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "SecantusDB==0.7.0b3"
  fi
  say "starting SecantusDB on 127.0.0.1:27017"
  nohup "$venv/bin/secantusd-py" --host 127.0.0.1 --port 27017 --storage-path :memory: \
    > "${TMPDIR:-/tmp}/confab-tests-secantus.log" 2>&1 &
  wait_port 27017 SecantusDB
fi

# Python tools, pinned, each in its own cached virtualenv.
# schemathesis for the OpenAPI conformance test (tests/schemathesis.rs); podman-compose
# to validate the compose file (tests/packaging.rs; Debian's 1.0.3 has no `config`).
pinned_tool schemathesis 4.32.5 schemathesis
pinned_tool podman-compose 1.6.0 podman-compose

say "test clients (npm ci)"
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error

say "cargo fmt --check"
cargo fmt --check
say "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

say "tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi
say "all tests passed"
