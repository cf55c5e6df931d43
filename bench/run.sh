#!/usr/bin/env bash
# Benchmarks that print figures (nothing here asserts a time):
#   bash bench/run.sh presence  [--users 10000]    connect N users, check presence converges
#   bash bench/run.sh roundtrip [--messages 1000]  POST → newMessage latency percentiles
#   bash bench/run.sh rate      [--users 2000 --rates 1000,2000,3000,4000,5000 --seconds 10]
#                               fixed-rate POSTs: latency percentiles, losses, CPU per rate
#   bash bench/run.sh typing    [--pairs 100 --seconds 10]  typing relay deliveries/s
#   bash bench/run.sh compare   [--users 1000,5000,10000 --pin --json FILE]
#                               confab beside the original's socket layer on Node socket.io
#                               (bench/node): idle RSS per connection, connect time, RSS after
#                               leaving, typing relay; prints a table, writes JSON
#   bash bench/run.sh logins    [--workers 32 --seconds 10]  complete email-code logins per second
#   bash bench/run.sh uploads   [--count 100 --concurrency 20]  1 MB JPEG image messages/s, peak RSS
#   bash bench/run.sh startup                       start-to-ready time, idle RSS, binary size
#   bash bench/run.sh soak      [--sockets 1000 --rate 500 --minutes 30]  sustained load: deliveries, RSS
#   bash bench/run.sh chatlist  [--users 10000 --chats 1000]  GET /chat/all on MongoDB
#                               (CONFAB_BENCH_MONGO, default mongodb://127.0.0.1:27017)
set -euo pipefail
cd "$(dirname "$0")/.."
# Thousands of sockets: both the server and the load generator need the descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --quiet --bin confab --example bench
if [ "${1:-}" = compare ] && [ ! -d bench/node/node_modules/socket.io ]; then
  npm ci --prefix bench/node --no-audit --no-fund
fi
case "${1:-}" in
  startup)
    bin=target/release/confab
    dir=$(mktemp -d)
    for i in 1 2 3 4 5; do
      # Run 1 is a first start (creates the database and secrets); the rest are restarts.
      start=$(date +%s%N)
      (cd "$dir" && CONFAB_ADDR=127.0.0.1:5987 CONFAB_LOG=warn "$OLDPWD/$bin" >/dev/null 2>&1 &)
      until curl -sf http://127.0.0.1:5987/readyz >/dev/null; do sleep 0.005; done
      end=$(date +%s%N)
      echo "  run $i ($([ "$i" = 1 ] && echo first start || echo restart)): ready (readyz 200) after $(( (end - start) / 1000000 )) ms"
      sleep 1
      pid=$(pgrep -f "$bin" | head -1)
      echo "         idle RSS: $(grep VmRSS /proc/$pid/status | awk '{print $2, $3}')"
      kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
    done
    echo "  binary size: $(du -h $bin | cut -f1) ($(stat -c %s $bin) bytes)"
    rm -rf "$dir"
    ;;
  *) exec target/release/examples/bench "$@" ;;
esac
