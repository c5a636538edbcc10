#!/usr/bin/env bash
# Re-record the real services' answers to the cases of this package. Run by
# a developer, not by CI; from the repository root:
#
#   GOLDEN=/path/to/golden test/ironicinput/record.sh [ironic]
#       Ironic 21.4 (start-ironic.sh of the golden tools, empty database)
#       answers Cases() -> testdata/ironic-21.4.jsonl
#   test/ironicinput/record.sh inspector
#       Debian 12's ironic-inspector 11.1 (package ironic-inspector) answers
#       InspectorCalls() -> testdata/ironic-inspector-11.1.jsonl
#   test/ironicinput/record.sh image
#       Debian 12's glance-api 25.1 (package glance-api) answers ImageCalls()
#       -> testdata/glance-25.1.jsonl
#
# ironic-inspector and glance-api are started here by hand on loopback, with
# sqlite and no authentication, in a temporary directory, and stopped at the
# end. ironic-inspector asks an Ironic API for the nodes: a ferric conductor
# this script builds and starts (on loopback, its own state directory), so
# that the real Ironic's ports stay free for others.
#
# The services' commands can be replaced (e.g. to run the same releases
# from their sources, with PYTHONPATH set):
#   INSPECTOR_CMD (ironic-inspector), INSPECTOR_DBSYNC (ironic-inspector-dbsync),
#   GLANCE_CMD (glance-api), GLANCE_MANAGE (glance-manage).
set -euo pipefail
what="${1:-ironic}"
out=test/ironicinput/testdata
work="$(mktemp -d "${TMPDIR:-/tmp}/ironicinput.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${RECORD_KEEP:-}" ]; then rm -rf "$work"; else echo "record.sh: kept $work" >&2; fi
}
trap cleanup EXIT

# wait_http URL: until URL answers at all (any status), 60 s at most.
wait_http() {
  for _ in $(seq 300); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "record.sh: $1 does not answer" >&2
  exit 1
}

# free_port: a loopback TCP port nothing listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

record() { # file, recorder flags...
  local file="$1"; shift
  go run ./test/ironicinput/record "$@" > "$out/$file.tmp"
  mv "$out/$file.tmp" "$out/$file"
  wc -l "$out/$file"
}

case "$what" in
ironic)
  GOLDEN="${GOLDEN:?directory of start-ironic.sh and stop-ironic.sh}"
  export IRONIC_GOLDEN_STATE="${IRONIC_GOLDEN_STATE:-${TMPDIR:-/tmp}/ironicinput-ironic}"
  "$GOLDEN/stop-ironic.sh" >/dev/null 2>&1 || true
  "$GOLDEN/start-ironic.sh"
  trap '"$GOLDEN/stop-ironic.sh" >/dev/null 2>&1 || true; cleanup' EXIT
  record ironic-21.4.jsonl -url http://127.0.0.1:6385
  ;;
inspector)
  api_port="$(free_port)"; insp_port="$(free_port)"
  go build -o "$work/ferric-conductor" ./conductor/cmd/ferric-conductor
  "$work/ferric-conductor" -api-listen "127.0.0.1:$api_port" -inspector-listen "" \
    -state-dir "$work/ferric" > "$work/ferric.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$api_port/"
  cat > "$work/inspector.conf" <<EOF
[DEFAULT]
auth_strategy = noauth
standalone = true
listen_address = 127.0.0.1
listen_port = $insp_port
transport_url = fake:/
host = ironicinput
[database]
connection = sqlite:///$work/inspector.sqlite
[ironic]
auth_type = none
endpoint_override = http://127.0.0.1:$api_port
[pxe_filter]
driver = noop
[processing]
store_data = none
EOF
  ${INSPECTOR_DBSYNC:-ironic-inspector-dbsync} --config-file "$work/inspector.conf" upgrade > "$work/dbsync.log" 2>&1
  ${INSPECTOR_CMD:-ironic-inspector} --config-file "$work/inspector.conf" > "$work/inspector.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$insp_port/"
  record ironic-inspector-11.1.jsonl -service inspector -url "http://127.0.0.1:$api_port" \
    -inspector-url "http://127.0.0.1:$insp_port"
  ;;
image)
  port="$(free_port)"
  mkdir -p "$work/images"
  cat > "$work/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = 1
[database]
connection = sqlite:///$work/glance.sqlite
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $work/images/
[paste_deploy]
flavor =
config_file = ${GLANCE_PASTE:-/etc/glance/glance-api-paste.ini}
EOF
  ${GLANCE_MANAGE:-glance-manage} --config-file "$work/glance-api.conf" db_sync > "$work/dbsync.log" 2>&1
  ${GLANCE_CMD:-glance-api} --config-file "$work/glance-api.conf" > "$work/glance.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/"
  record glance-25.1.jsonl -service image -image-url "http://127.0.0.1:$port"
  ;;
*)
  echo "usage: $0 [ironic|inspector|image]" >&2
  exit 2
  ;;
esac
