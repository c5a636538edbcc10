#!/usr/bin/env bash
# Side-by-side PXE benchmark: ferric's DHCP and TFTP servers against kea,
# dnsmasq and tftpd-hpa, in one run, in the same two network namespaces
# (one veth pair), with the same load generators (perfdhcp for DHCP, the Go
# TFTP load generator pxe/cmd/tftp-load for TFTP), the server pinned to CPU
# 1 and the load generator to CPU 0. Every step runs ROUNDS times, the
# servers taking turns within a round; the summary prints medians and
# ferric's ratio to each anchor. Needs root (make bench-pxe installs the
# packages first with test/bench/pxe-deps.sh).
#
# Environment (defaults in brackets):
#   ROUNDS [3]  PERIOD [10] seconds of perfdhcp load per step
#   DORA_RATES ["3000 6000 10000"]  DO_RATE [25000]
#   STORMS ["200 1000"]  BLKSIZES ["512 1468"]  TFTP_FILE [/usr/lib/ipxe/undionly.kpxe]
#   PARTS ["dhcp tftp"]  W [mktemp -d]: work folder, results in $W/results.tsv
#   BIN_DIR: where pxe-bench and tftp-load are (built with go when unset)
set -uo pipefail
ROUNDS=${ROUNDS:-3}
PERIOD=${PERIOD:-10}
DORA_RATES=${DORA_RATES:-3000 6000 10000}
DO_RATE=${DO_RATE:-25000}
STORMS=${STORMS:-200 1000}
BLKSIZES=${BLKSIZES:-512 1468}
TFTP_FILE=${TFTP_FILE:-/usr/lib/ipxe/undionly.kpxe}
PARTS=${PARTS:-dhcp tftp}
W=${W:-$(mktemp -d /tmp/pxe-bench.XXXXXX)}
SRV_CPU=1; CLI_CPU=0
S=pxbs$$; C=pxbc$$
mkdir -p "$W"
RES=$W/results.tsv
: > "$RES"

need() { command -v "$1" >/dev/null || { echo "pxe-bench: $1 missing (run test/bench/pxe-deps.sh)" >&2; exit 1; }; }
[ "$(id -u)" = 0 ] || { echo "pxe-bench: needs root (network namespaces)" >&2; exit 1; }
for c in ip taskset perfdhcp kea-dhcp4 dnsmasq in.tftpd; do need $c; done

if [ -z "${BIN_DIR:-}" ]; then
  BIN_DIR=$W/bin
  here=$(cd "$(dirname "$0")/../.." && pwd)
  (cd "$here" && go build -o "$BIN_DIR/pxe-bench" ./pxe/cmd/pxe-bench && go build -o "$BIN_DIR/tftp-load" ./pxe/cmd/tftp-load) || exit 1
fi

SP=
stop_server() {
  if [ -n "$SP" ]; then kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; SP=; fi
}
cleanup() { stop_server; ip netns del $S 2>/dev/null; ip netns del $C 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add $S && ip netns add $C || exit 1
ip link add pbs$$ type veth peer name pbc$$
ip link set pbs$$ netns $S; ip link set pbc$$ netns $C
ip -n $S link set pbs$$ name pxa-s; ip -n $C link set pbc$$ name pxa-c
ip -n $S addr add 10.77.0.1/16 dev pxa-s; ip -n $C addr add 10.77.0.2/16 dev pxa-c
for n in $S $C; do ip -n $n link set lo up; done
ip -n $S link set pxa-s up; ip -n $C link set pxa-c up

# cpu_ticks PID: user+system (+ reaped children) CPU ticks of PID.
cpu_ticks() { awk '{print $14+$15+$16+$17}' /proc/"$1"/stat 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# start NAME: starts one server in the server namespace on CPU 1 (SP).
start() {
  local name=$1 d=$W/run-$1; rm -rf "$d"; mkdir -p "$d"
  case $name in
  kea)
    cat > "$d/kea.json" <<EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "pxa-s" ] },
  "lease-database": { "type": "memfile", "persist": true, "lfc-interval": 3600, "name": "$d/kea-leases4.csv" },
  "valid-lifetime": 43200,
  "subnet4": [ { "id": 1, "subnet": "10.77.0.0/16", "pools": [ { "pool": "10.77.1.0 - 10.77.255.254" } ],
                 "next-server": "10.77.0.1", "boot-file-name": "undionly.kpxe",
                 "option-data": [ { "name": "routers", "data": "10.77.0.1" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "INFO", "output_options": [ { "output": "$d/kea-dhcp4.log" } ] } ] } }
EOF
    KEA_PIDFILE_DIR=$d KEA_LOCKFILE_DIR=$d ip netns exec $S taskset -c $SRV_CPU kea-dhcp4 -c "$d/kea.json" > "$d/out" 2>&1 &
    ;;
  dnsmasq-dhcp)
    cat > "$d/dnsmasq.conf" <<EOF
port=0
interface=pxa-s
bind-interfaces
dhcp-range=10.77.1.0,10.77.255.254,255.255.0.0,12h
dhcp-lease-max=70000
dhcp-leasefile=$d/dnsmasq.leases
dhcp-authoritative
dhcp-boot=undionly.kpxe,,10.77.0.1
no-ping
log-facility=$d/dnsmasq.log
EOF
    ip netns exec $S taskset -c $SRV_CPU dnsmasq -k -C "$d/dnsmasq.conf" --pid-file= > "$d/out" 2>&1 &
    ;;
  ferric|ferric-sync)
    local store=log; [ $name = ferric-sync ] && store=log-sync
    ip netns exec $S taskset -c $SRV_CPU "$BIN_DIR/pxe-bench" dhcp -iface pxa-s -range-start 10.77.1.0 -range-end 10.77.255.254 \
      -store $store -leases "$d/leases.log" > "$d/out" 2>&1 &
    ;;
  ferric-proxy)
    ip netns exec $S taskset -c $SRV_CPU "$BIN_DIR/pxe-bench" dhcp -mode proxy -iface pxa-s > "$d/out" 2>&1 &
    ;;
  tftpd-hpa)
    ip netns exec $S taskset -c $SRV_CPU in.tftpd -L -a 10.77.0.1:69 -s "$W/tftp" > "$d/out" 2>&1 &
    ;;
  dnsmasq-tftp)
    printf 'port=0\nenable-tftp\ntftp-root=%s\ntftp-max=1000\nlisten-address=10.77.0.1\nbind-interfaces\nlog-facility=%s\n' "$W/tftp" "$d/dnsmasq.log" > "$d/dnsmasq.conf"
    ip netns exec $S taskset -c $SRV_CPU dnsmasq -k -C "$d/dnsmasq.conf" --pid-file= > "$d/out" 2>&1 &
    ;;
  ferric-tftp)
    ip netns exec $S taskset -c $SRV_CPU "$BIN_DIR/pxe-bench" tftp -root "$W/tftp" -addr 10.77.0.1:69 > "$d/out" 2>&1 &
    ;;
  esac
  SP=$!
  sleep 1.5
  if ! kill -0 "$SP" 2>/dev/null; then echo "pxe-bench: $name did not start:" >&2; cat "$d/out" >&2; SP=; return 1; fi
}

# rec TEST SERVER ROUND METRIC VALUE
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RES"; }

# perf_field FILE SECTION FIELD: a number from perfdhcp's output.
perf_field() {
  awk -v sec="$2" -v f="$3" '
    /^\*\*\*Statistics for: / { in_sec = index($0, sec) > 0 }
    in_sec && index($0, f ":") == 1 { sub(/^[^:]*: */, ""); print $1 + 0; exit }' "$1"
}

# dhcp_step TEST SERVER ROUND RATE dora|do [perfdhcp args]
dhcp_step() {
  local test=$1 name=$2 round=$3 rate=$4 kind=$5; shift 5
  [ "$kind" = do ] && set -- -i "$@"
  start "$name" || { rec "$test" "$name" "$round" failed_to_start 1; return; }
  local out=$W/perf-$test-$name-$round.out t0 t1
  t0=$(cpu_ticks "$SP")
  ip netns exec $C taskset -c $CLI_CPU perfdhcp -4 -l pxa-c -r "$rate" -R 60000 -p "$PERIOD" -W 1000000 "$@" > "$out" 2>&1
  t1=$(cpu_ticks "$SP")
  stop_server
  # ferric also reports its own part of REQUEST->ACK (read to sent).
  local srv_ack; srv_ack=$(grep -o 'REQUEST->ACK: p50=[0-9.]*ms p99=[0-9.]*ms' "$W/run-$name/out" 2>/dev/null)
  if [ -n "$srv_ack" ] && [ "$kind" = dora ]; then
    rec "$test" "$name" "$round" srv_ack_p50_ms "$(sed 's/.*p50=\([0-9.]*\)ms.*/\1/' <<< "$srv_ack")"
    rec "$test" "$name" "$round" srv_ack_p99_ms "$(sed 's/.*p99=\([0-9.]*\)ms.*/\1/' <<< "$srv_ack")"
  fi
  local do_recv do_drop ra_recv ra_drop done
  do_recv=$(perf_field "$out" DISCOVER-OFFER "received packets")
  do_drop=$(perf_field "$out" DISCOVER-OFFER "drops ratio")
  rec "$test" "$name" "$round" do_drop_pct "${do_drop:-100}"
  rec "$test" "$name" "$round" offer_ms "$(perf_field "$out" DISCOVER-OFFER "avg delay")"
  done=$do_recv
  if [ "$kind" = dora ]; then
    ra_recv=$(perf_field "$out" REQUEST-ACK "received packets")
    ra_drop=$(perf_field "$out" REQUEST-ACK "drops ratio")
    rec "$test" "$name" "$round" ra_drop_pct "${ra_drop:-100}"
    rec "$test" "$name" "$round" ack_ms "$(perf_field "$out" REQUEST-ACK "avg delay")"
    done=$ra_recv
  fi
  rec "$test" "$name" "$round" done_per_s "$(awk -v n="${done:-0}" -v p="$PERIOD" 'BEGIN{printf "%.0f", n/p}')"
  [ "${done:-0}" -gt 0 ] && rec "$test" "$name" "$round" srv_cpu_us_per_exch "$(awk -v t=$((t1-t0)) -v hz="$hz" -v n="$done" 'BEGIN{printf "%.1f", t/hz*1e6/n}')"
  echo "  $test $name round $round: $(grep -E '^(Rate|drops ratio|avg delay)' "$out" | tr -s ' ' | paste -sd' ')" >&2
}

# storm_step TEST SERVER ROUND N BLKSIZE
storm_step() {
  local test=$1 name=$2 round=$3 n=$4 blk=$5
  start "$name" || { rec "$test" "$name" "$round" failed_to_start 1; return; }
  local out=$W/storm-$test-$name-$round.out t0 t1
  t0=$(cpu_ticks "$SP")
  ip netns exec $C taskset -c $CLI_CPU "$BIN_DIR/tftp-load" -server 10.77.0.1:69 -file "$(basename "$TFTP_FILE")" \
    -n "$n" -blksize "$blk" -verify "$TFTP_FILE" > "$out" 2>&1
  t1=$(cpu_ticks "$SP")
  stop_server
  local line; line=$(grep '^round=' "$out" | tail -1)
  if [ -z "$line" ]; then rec "$test" "$name" "$round" failed "$n"; cat "$out" >&2; return; fi
  for k in wall failed p50 p99 retransmits; do
    v=$(sed -n "s/.* $k=\([0-9.]*\).*/\1/p" <<< "$line")
    rec "$test" "$name" "$round" "$k" "$v"
  done
  rec "$test" "$name" "$round" srv_cpu_s "$(awk -v t=$((t1-t0)) -v hz="$hz" 'BEGIN{printf "%.2f", t/hz}')"
  echo "  $test $name round $round: $line" >&2
}

echo "pxe-bench: work folder $W, $ROUNDS rounds, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$ROUNDS"); do
  if [[ " $PARTS " == *" dhcp "* ]]; then
    first=${DORA_RATES%% *}
    for rate in $DORA_RATES; do
      # ferric-sync: every ACK waits for fdatasync (power-loss safe), at the first rate only.
      for srv in kea ferric ferric-sync; do
        [ $srv = ferric-sync ] && [ "$rate" != "$first" ] && continue
        dhcp_step "dora-$rate" $srv "$r" "$rate" dora
      done
    done
    for srv in kea dnsmasq-dhcp ferric; do dhcp_step "do-$DO_RATE" $srv "$r" "$DO_RATE" do; done
    # Proxy mode answers PXE clients only: option 60 "PXEClient:Arch:00000:UNDI:002001" (BIOS).
    dhcp_step "do-$DO_RATE" ferric-proxy "$r" "$DO_RATE" do -o 60,505845436c69656e743a417263683a30303030303a554e44493a303032303031
  fi
  if [[ " $PARTS " == *" tftp "* ]]; then
    mkdir -p "$W/tftp"; cp "$TFTP_FILE" "$W/tftp/"
    for n in $STORMS; do
      for blk in $BLKSIZES; do
        for srv in dnsmasq-tftp tftpd-hpa ferric-tftp; do storm_step "tftp-$n-$blk" $srv "$r" "$n" "$blk"; done
      done
    done
  fi
done

# Summary: the median of the rounds per test, server and metric, and
# ferric's value divided by each anchor's.
echo
echo "PXE side by side: medians of $ROUNDS rounds (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
awk -F'\t' '
  { k = $1 SUBSEP $2 SUBSEP $4; v[k] = v[k] " " $5; if (!($1 in seen)) { seen[$1]; order[++nt] = $1 }
    if (!(($1, $2) in hs)) { hs[$1, $2]; srv[$1] = srv[$1] " " $2 }
    if (!(($1, $4) in hm)) { hm[$1, $4]; met[$1] = met[$1] " " $4 } }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    if (n == 0) return ""
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
  }
  END {
    for (ti = 1; ti <= nt; ti++) {
      t = order[ti]; ns = split(srv[t], ss, " "); nm = split(met[t], ms, " ")
      printf "\n%s\n%-22s", t, "metric"
      for (i = 1; i <= ns; i++) printf "%14s", ss[i]
      for (i = 1; i <= ns; i++) if (ss[i] !~ /^ferric/) for (j = 1; j <= ns; j++) if (ss[j] ~ /^ferric/) printf "%26s", ss[j] "/" ss[i]
      printf "\n"
      for (m = 1; m <= nm; m++) {
        printf "%-22s", ms[m]
        for (i = 1; i <= ns; i++) { md[i] = median(v[t, ss[i], ms[m]]); printf "%14s", md[i] }
        for (i = 1; i <= ns; i++) if (ss[i] !~ /^ferric/) for (j = 1; j <= ns; j++) if (ss[j] ~ /^ferric/)
          printf "%26s", (md[i] + 0 != 0 && md[j] != "") ? sprintf("%.2f", md[j] / md[i]) : "-"
        printf "\n"
      }
    }
  }' "$RES"
echo
echo "raw results: $RES"
