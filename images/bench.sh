#!/usr/bin/env bash
# Image store throughput: 2 GiB upload/download through the conductor vs cp and a plain curl.
set -euo pipefail
# Usage: images/bench.sh (as root, for drop_caches), after make build.
B=$(realpath "${FERRIC_CONDUCTOR:-$(dirname "$0")/../bin/ferric-conductor}")
D=${BENCH_DIR:-/tmp/ferric-image-bench}; mkdir -p "$D"; cd "$D"
[ -f img.raw ] || head -c 2147483648 /dev/urandom > img.raw
rm -rf state; mkdir state
$B --api-listen 127.0.0.1:16390 --state-dir state --inspector-listen "" > cond.log 2>&1 &
CP=$!
sleep 1
sync; echo 3 > /proc/sys/vm/drop_caches || true
t0=$(date +%s.%N); cp img.raw copy.raw; sync; t1=$(date +%s.%N)
echo "cp 2GiB (+sync): $(echo "$t1-$t0" | bc) s"
rm -f copy.raw
ID=$(curl -s -H 'Content-Type: application/json' localhost:16390/images/v2/images -d '{"name":"b","disk_format":"raw","container_format":"bare"}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
sync; echo 3 > /proc/sys/vm/drop_caches || true
t0=$(date +%s.%N); curl -s -T img.raw -H 'Content-Type: application/octet-stream' -X PUT localhost:16390/images/v2/images/$ID/file; t1=$(date +%s.%N)
echo "upload via store (md5+sha512+fsync): $(echo "$t1-$t0" | bc) s"
grep VmHWM /proc/$CP/status
sync; echo 3 > /proc/sys/vm/drop_caches || true
t0=$(date +%s.%N); curl -s localhost:16390/images/v2/images/$ID/file -o dl.raw; sync; t1=$(date +%s.%N)
echo "download via store to file (+sync): $(echo "$t1-$t0" | bc) s"
grep VmHWM /proc/$CP/status
cmp dl.raw img.raw && echo identical
rm -f dl.raw
# plain static server for the same file, as the curl reference
python3 -m http.server 16391 --bind 127.0.0.1 > /dev/null 2>&1 &
PY=$!
sleep 1
sync; echo 3 > /proc/sys/vm/drop_caches || true
t0=$(date +%s.%N); curl -s localhost:16391/img.raw -o dl.raw; sync; t1=$(date +%s.%N)
echo "download via python http.server to file (+sync): $(echo "$t1-$t0" | bc) s"
rm -f dl.raw
kill $PY $CP
