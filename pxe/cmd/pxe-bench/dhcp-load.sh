#!/bin/bash
# usage: pxe-bench-dhcp.sh RATE [extra perfdhcp args]
set -u
RATE=$1; shift
S=pxbs$$; C=pxbc$$; W=$(mktemp -d)
cleanup() { [ -n "${SP:-}" ] && kill $SP 2>/dev/null; wait 2>/dev/null; ip netns del $S 2>/dev/null; ip netns del $C 2>/dev/null; rm -rf $W; }
trap cleanup EXIT
ip netns add $S; ip netns add $C
ip link add pbs$$ type veth peer name pbc$$
ip link set pbs$$ netns $S; ip link set pbc$$ netns $C
ip -n $S link set pbs$$ name pxa-s; ip -n $C link set pbc$$ name pxa-c
ip -n $S addr add 10.77.0.1/16 dev pxa-s; ip -n $C addr add 10.77.0.2/16 dev pxa-c
for n in $S $C; do ip -n $n link set lo up; done
ip -n $S link set pxa-s up; ip -n $C link set pxa-c up
ip netns exec $S taskset -c 1 ${BIN:-./pxe-bench} dhcp -iface pxa-s -range-start 10.77.1.0 -range-end 10.77.255.254 -leases $W/l.db ${SRVARGS:-} > $W/srv.out 2>&1 &
SP=$!
sleep 0.5
T0=$(awk '{print $14+$15}' /proc/$SP/stat 2>/dev/null || true)
SPID=$(pgrep -P $SP pxe-bench || echo $SP)
T0=$(awk '{print $14+$15}' /proc/$SPID/stat)
ip netns exec $C taskset -c 0 perfdhcp -4 -l pxa-c -r $RATE -R 60000 -p 10 -W 1000000 "$@" > $W/perf.out 2>&1
T1=$(awk '{print $14+$15}' /proc/$SPID/stat)
grep -E "sent packets|received packets|drops ratio|avg delay" $W/perf.out | tr -s ' ' | paste -sd' ' 
echo "server CPU ticks (1/100 s) over run: $((T1-T0))  (10 s => $(( (T1-T0) / 10 ))% of a core)"
grep -E "RSS|VmRSS" /proc/$SPID/status
kill $SP; wait $SP 2>/dev/null; cat $W/srv.out | tail -3
