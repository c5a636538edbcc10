#!/usr/bin/env bash
# scale.sh: the scale figures of one conductor (issue 26), on a fresh state
# directory: creates, detailed listing walks and RSS (test/bench phases a
# and b), then agent heartbeats (test/bench/heartbeat.sh: fast-track,
# cleaning and deploying agents; with GOLDEN, the real Ironic beside).
# Needs `make build` (bin/ferric-conductor, bin/bench, bin/heartbeat).
#
# env: SCALE_NODES (100000) nodes for the listings, SCALE_HB_NODES (2000)
#      agents, SCALE_HB_CONC (128) heartbeat clients, SCALE_HB_DUR (10s) a round,
#      SCALE_PORT (16395), SCALE_DIR (a new temporary directory),
#      SCALE_SOAK_DUR (30m) and SCALE_SOAK_NODES (2000): the soak of three
#      conductors on one etcd (test/soak), one killed and restarted in turn.
set -euo pipefail
BIN="${BIN:-bin}"
NODES="${SCALE_NODES:-100000}"
HB_NODES="${SCALE_HB_NODES:-2000}"
HB_CONC="${SCALE_HB_CONC:-128}"
HB_DUR="${SCALE_HB_DUR:-10s}"
PORT="${SCALE_PORT:-16395}"
DIR="${SCALE_DIR:-$(mktemp -d /tmp/ferric-scale.XXXXXX)}"
URL="http://127.0.0.1:$PORT"

pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap stop EXIT

start() { # start STATE_DIR
  "$BIN/ferric-conductor" --api-listen "127.0.0.1:$PORT" --state-dir "$1" --inspector-listen "" \
    --log-level warn >"$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    if curl -sf "$URL/v1" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$1.log"; return 1; }
    sleep 1
  done
  echo "conductor not ready" >&2; return 1
}

echo "== listings: $NODES nodes (state in $DIR/list)"
start "$DIR/list"
"$BIN/bench" -phases ab -n "$NODES" -create-conc 16 -list-reps 3 -pid "$pid" "$URL"
t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
"$BIN/bench" -phases b -list-reps 3 -pid "$pid" "$URL" | tail -2
t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
echo "listings: conductor CPU $(( (t1 - t0) / 3 ))0 ms a detailed walk of $NODES nodes (3 walks)"
du -sh "$DIR/list" | sed 's/^/state on disk: /'
stop

HB_NODES="$HB_NODES" HB_CONC="$HB_CONC" HB_DUR="$HB_DUR" HB_DIR="$DIR/hb" BIN="$BIN" "$(dirname "$0")/heartbeat.sh"

echo "== soak: three conductors on one etcd, ${SCALE_SOAK_DUR:-30m}"
go test -count=1 -timeout 0 -run TestSoakThreeConductors -v ./test/soak/ -soak.duration "${SCALE_SOAK_DUR:-30m}" -soak.nodes "${SCALE_SOAK_NODES:-2000}" | tee "$DIR/soak.log" | grep -E 'SOAK SUMMARY|taken over|sample:|stuck|failed:|FAIL|^ok'
