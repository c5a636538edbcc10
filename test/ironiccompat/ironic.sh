#!/usr/bin/env bash
# Start or stop a real OpenStack Ironic (Debian packages) on 127.0.0.1 for the
# agent compatibility test: noauth, sqlite, json-rpc, fake-hardware with the
# real `direct` deploy interface, so that ferric-agent running as a process
# plays the ramdisk.
#
# usage: ironic.sh install            apt-get install the packages (root)
#        ironic.sh start STATE_DIR    write config, create DB, start api+conductor
#        ironic.sh stop STATE_DIR     stop by the PIDs saved in STATE_DIR
# env:   IRONIC_API_PORT (default 16385), IRONIC_RPC_PORT (default 18089),
#        HEARTBEAT_TIMEOUT (default 20), AUTOMATED_CLEAN (0|1, default 0)
set -euo pipefail
API_PORT="${IRONIC_API_PORT:-16385}"
RPC_PORT="${IRONIC_RPC_PORT:-18089}"
log() { echo "[ironic.sh] $*" >&2; }

install() {
  command -v ironic-conductor >/dev/null && command -v ironic-api >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { log "need root to install ironic"; exit 1; }
  local added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added=1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-upgrade -o Dpkg::Options::=--force-confold ironic-api ironic-conductor procps >&2
  [ "$added" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

start() {
  local state; state="$(realpath -m "$1")"; mkdir -p "$state"
  local clean=false; [ "${AUTOMATED_CLEAN:-0}" = 1 ] && clean=true
  cat > "$state/ironic.conf" <<EOF
[DEFAULT]
auth_strategy = noauth
rpc_transport = json-rpc
host = 127.0.0.1
enabled_hardware_types = fake-hardware
enabled_boot_interfaces = fake
enabled_deploy_interfaces = direct,fake
enabled_management_interfaces = fake
enabled_power_interfaces = fake
enabled_inspect_interfaces = no-inspect
enabled_network_interfaces = noop
enabled_console_interfaces = no-console
enabled_raid_interfaces = no-raid,fake
enabled_rescue_interfaces = no-rescue
enabled_storage_interfaces = noop
enabled_vendor_interfaces = no-vendor
enabled_bios_interfaces = no-bios
default_network_interface = noop
debug = true
use_stderr = false
[api]
host_ip = 127.0.0.1
port = $API_PORT
api_workers = 1
ramdisk_heartbeat_timeout = ${HEARTBEAT_TIMEOUT:-20}
[agent]
image_download_source = http
stream_raw_images = true
post_deploy_get_power_state_retries = 1
post_deploy_get_power_state_retry_interval = 1
deploy_logs_collect = on_failure
certificates_path = $state/certificates
[conductor]
automated_clean = $clean
deploy_callback_timeout = 300
clean_callback_timeout = 300
[deploy]
fast_track = false
erase_devices_priority = 0
erase_devices_metadata_priority = 99
[database]
connection = sqlite:///$state/ironic.sqlite
[dhcp]
dhcp_provider = none
[service_catalog]
endpoint_override = http://127.0.0.1:$API_PORT
[json_rpc]
auth_strategy = noauth
host_ip = 127.0.0.1
port = $RPC_PORT
EOF
  rm -f "$state/ironic.sqlite"
  ironic-dbsync --config-file "$state/ironic.conf" --log-file "$state/dbsync.log" create_schema >/dev/null 2>&1
  cd "$state"
  setsid ironic-conductor --config-file "$state/ironic.conf" --log-file "$state/conductor.log" >"$state/conductor.out" 2>&1 </dev/null &
  echo $! > "$state/conductor.pid"
  for _ in $(seq 120); do (exec 3<>/dev/tcp/127.0.0.1/$RPC_PORT) 2>/dev/null && break; sleep 0.5; done
  setsid ironic-api --config-file "$state/ironic.conf" --log-file "$state/api.log" >"$state/api.out" 2>&1 </dev/null &
  echo $! > "$state/api.pid"
  for _ in $(seq 120); do
    if curl -sf "http://127.0.0.1:$API_PORT/v1/drivers" 2>/dev/null | grep -q fake-hardware; then log "ironic up on $API_PORT"; return 0; fi
    kill -0 "$(cat "$state/api.pid")" 2>/dev/null || { log "api died"; tail -20 "$state/api.log" >&2; return 1; }
    sleep 0.5
  done
  log "timeout waiting for the API"; return 1
}

stop() {
  local state="$1"
  for svc in api conductor; do
    local f="$state/$svc.pid"; [ -s "$f" ] || continue
    local pid; pid="$(cat "$f")"
    # setsid made each service a process group leader: stop the group (API workers).
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    rm -f "$f"
  done
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?state dir}" ;;
  stop) stop "${2:?state dir}" ;;
  *) echo "usage: $0 install|start STATE|stop STATE" >&2; exit 2 ;;
esac
