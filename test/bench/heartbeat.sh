#!/usr/bin/env bash
# heartbeat.sh: agent heartbeats on one ferric conductor (issue 26), on a
# fresh state directory: agents in fast-track idle, cleaning and deploying
# (test/bench/heartbeat), several rounds, and with GOLDEN the real Ironic
# under the same load in the same run, rounds alternating, and the ratio.
# Needs bin/ferric-conductor and bin/heartbeat (make bench-heartbeat).
#
# env: HB_NODES (2000) agents on ferric, HB_MIX (fast,clean,deploy),
#      HB_CONC (128) clients, HB_DUR (10s) a round, HB_ROUNDS (3),
#      HB_PORT (16397), HB_DIR (a new temporary directory),
#      GOLDEN: a directory with Ironic's start-ironic.sh and stop-ironic.sh
#      (ironic-golden): the real Ironic is started from it on 127.0.0.1:6385
#      (json-rpc 8089, both fixed by the script), its state in HB_DIR/ironic,
#      with HB_BASE_NODES (300) agents (it enrolls them about 50 times
#      slower) and HB_BASE_CONC clients (default HB_CONC; past about 16 it
#      answers 503 "lack of free conductor workers" to many).
set -euo pipefail
BIN="${BIN:-bin}"
NODES="${HB_NODES:-2000}"
PORT="${HB_PORT:-16397}"
DIR="${HB_DIR:-$(mktemp -d /tmp/ferric-hb.XXXXXX)}"
URL="http://127.0.0.1:$PORT"
mkdir -p "$DIR"

pid=""
ironic=""
stop() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
  if [ -n "$ironic" ]; then IRONIC_GOLDEN_STATE="$DIR/ironic" "$GOLDEN/stop-ironic.sh" >/dev/null || true; ironic=""; fi
}
trap stop EXIT

# Every cleaning or deploying node holds a worker while its agent's command
# runs, so the conductor gets one for each agent.
"$BIN/ferric-conductor" --api-listen "127.0.0.1:$PORT" --state-dir "$DIR/ferric" --inspector-listen "" \
  --workers $((NODES + 100)) --log-level warn >"$DIR/ferric.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  if curl -sf "$URL/v1" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$DIR/ferric.log"; exit 1; }
  sleep 1
done

args=(-n "$NODES" -mix "${HB_MIX:-fast,clean,deploy}" -conc "${HB_CONC:-128}" -dur "${HB_DUR:-10s}"
  -rounds "${HB_ROUNDS:-3}" -setup-conc 16 -pid "$pid")
if [ -n "${GOLDEN:-}" ]; then
  # Standalone Ironic finds its own API URL (for the ramdisk's parameters,
  # needed to prepare cleaning and deploys) in [service_catalog]
  # endpoint_override; start-ironic.sh does not write it, so it comes
  # through oslo.config's environment source.
  OS_SERVICE_CATALOG__ENDPOINT_OVERRIDE=http://127.0.0.1:6385 IRONIC_GOLDEN_STATE="$DIR/ironic" \
    "$GOLDEN/start-ironic.sh" >/dev/null
  ironic=1
  args+=(-base http://127.0.0.1:6385 -base-n "${HB_BASE_NODES:-300}" -base-conc "${HB_BASE_CONC:-0}"
    -base-pid "$(cat "$DIR/ironic/api.pid"),$(cat "$DIR/ironic/conductor.pid")")
fi
echo "== heartbeats: ferric $URL (state in $DIR)${GOLDEN:+, the real Ironic http://127.0.0.1:6385 as the baseline}"
"$BIN/heartbeat" "${args[@]}" "$URL"
