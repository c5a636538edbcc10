#!/usr/bin/env bash
# Image store throughput: a 2 GiB image uploaded to and downloaded from the
# conductor's image store, side by side with cp and with curl against a plain
# Go file server (PUT writes the body to a file and fsyncs; GET serves it).
# Each measurement runs ROUNDS times, interleaved (this machine's disk varies
# from run to run); each run is printed, then the medians and the ratios.
#
# WARM_SOURCE=1 reads the uploaded file back into the page cache after each
# drop, for every contender alike: the source disk's read then drops out.
#
# usage: [ROUNDS=3] [WARM_SOURCE=1] images/bench.sh   (as root for drop_caches, after make build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(realpath "${FERRIC_CONDUCTOR:-$ROOT/bin/ferric-conductor}")
D=${BENCH_DIR:-/tmp/ferric-image-bench}; mkdir -p "$D"
ROUNDS=${ROUNDS:-3}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
[ -f "$D/img.raw" ] || head -c 2147483648 /dev/urandom > "$D/img.raw"

mkdir -p "$D/plain" "$D/sink"
cat > "$D/plain/main.go" <<'EOF'
package main

import ("io"; "net/http"; "os"; "path/filepath")

// GET serves files from dir; PUT /name writes the body to dir/name, fsynced.
func main() {
	dir := os.Args[2]
	fs := http.FileServer(http.Dir(dir))
	http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			fs.ServeHTTP(w, r)
			return
		}
		f, err := os.Create(filepath.Join(dir, filepath.Base(r.URL.Path)))
		if err == nil {
			_, err = io.CopyBuffer(f, r.Body, make([]byte, 1<<20))
		}
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
}
EOF
(cd "$D/plain" && [ -f go.mod ] || go mod init plain >/dev/null 2>&1; cd "$D/plain" && go build -o plain .)
ln -f "$D/img.raw" "$D/sink/img.raw" 2>/dev/null || cp "$D/img.raw" "$D/sink/img.raw"

rm -rf "$D/state"; mkdir "$D/state"
"$B" --api-listen 127.0.0.1:16390 --state-dir "$D/state" --inspector-listen "" > "$D/cond.log" 2>&1 & CP=$!; PIDS+=($CP)
"$D/plain/plain" 127.0.0.1:16391 "$D/sink" & PIDS+=($!)
sleep 1

now() { date +%s.%N; }
drop() {
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  if [ -n "${WARM_SOURCE:-}" ]; then cat "$D/img.raw" > /dev/null; fi
}
RES="$D/results"; : > "$RES"
record() { # label start end
  local t; t=$(awk -v s="$2" -v e="$3" 'BEGIN{print e-s}')
  printf '%-48s%6.2f s  %5.0f MiB/s\n' "$1:" "$t" "$(awk -v t="$t" 'BEGIN{print 2048/t}')"
  echo "$1	$t" >> "$RES"
}
newimage() {
  curl -sf -H 'Content-Type: application/json' localhost:16390/images/v2/images \
    -d '{"name":"bench","disk_format":"raw","container_format":"bare"}' |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])'
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  rm -f "$D/copy.raw"; drop; s=$(now); cp "$D/img.raw" "$D/copy.raw"; sync "$D/copy.raw"; e=$(now)
  record "cp (+sync)" "$s" "$e"; rm -f "$D/copy.raw"
  rm -f "$D/sink/up.raw"; drop; s=$(now)
  curl -sf -T "$D/img.raw" -X PUT localhost:16391/up.raw; e=$(now)
  record "curl upload to a plain server (fsync)" "$s" "$e"; rm -f "$D/sink/up.raw"
  ID=$(newimage); drop; s=$(now)
  curl -sf -T "$D/img.raw" -H 'Content-Type: application/octet-stream' -X PUT "localhost:16390/images/v2/images/$ID/file"; e=$(now)
  record "upload to the store (md5+sha512, fsync)" "$s" "$e"
  rm -f "$D/dl.raw"; drop; s=$(now); curl -sf "localhost:16391/img.raw" -o "$D/dl.raw"; sync "$D/dl.raw"; e=$(now)
  record "curl download from a plain server (+sync)" "$s" "$e"
  rm -f "$D/dl.raw"; drop; s=$(now); curl -sf "localhost:16390/images/v2/images/$ID/file" -o "$D/dl.raw"; sync "$D/dl.raw"; e=$(now)
  record "curl download from the store (+sync)" "$s" "$e"
  cmp "$D/dl.raw" "$D/img.raw" || { echo "downloaded image differs"; exit 1; }
  rm -f "$D/dl.raw"
  curl -sf -X DELETE "localhost:16390/images/v2/images/$ID"
done
echo "conductor peak RSS: $(awk '/VmHWM/{print $2/1024 " MiB"}' /proc/$CP/status)"
echo "== median of $ROUNDS rounds (2 GiB)"
awk -F'\t' '
  { if (!($1 in n)) order[++k] = $1; v[$1, ++n[$1]] = $2 }
  END {
    for (i = 1; i <= k; i++) {
      l = order[i]; c = n[l]
      for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[l, b] < v[l, a]) { t = v[l, a]; v[l, a] = v[l, b]; v[l, b] = t }
      m[l] = (c % 2) ? v[l, (c + 1) / 2] : (v[l, c / 2] + v[l, c / 2 + 1]) / 2
      printf "%-48s%6.2f s  %5.0f MiB/s\n", l ":", m[l], 2048 / m[l]
    }
    up = "upload to the store (md5+sha512, fsync)"; down = "curl download from the store (+sync)"
    printf "upload vs cp: %.2fx, vs curl upload: %.2fx (target >= 0.8x)\n", m["cp (+sync)"] / m[up], m["curl upload to a plain server (fsync)"] / m[up]
    printf "download vs cp: %.2fx, vs curl download: %.2fx (target >= 0.8x)\n", m["cp (+sync)"] / m[down], m["curl download from a plain server (+sync)"] / m[down]
  }' "$RES"
