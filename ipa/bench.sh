#!/usr/bin/env bash
# Image write benchmark: ferric-agent's write_image (raw and qcow2, streamed
# from a local HTTP server to a file used as disk) side by side with
# `curl | dd conv=fsync`, `curl | tee >(sha256sum) | dd` and `qemu-img convert`,
# plus the agent's peak RSS (VmHWM), and this machine's streaming floor
# (the qcow2 file's bytes downloaded and written with O_DIRECT, nothing
# else).
#
# usage: [ROUNDS=3] [WARM_SOURCE=1] ipa/bench.sh [SIZE_MIB]   (default 2048; needs curl, qemu-img, sfdisk)
set -euo pipefail
SIZE_MIB="${1:-2048}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
W="$(mktemp -d "${TMPDIR:-/tmp}/ferric-bench.XXXXXX")"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40)

cd "$ROOT"
CGO_ENABLED=0 go build -o "$W/ferric-agent" ./ipa/cmd/ferric-agent
cat > "$W/serve.go" <<'EOF'
package main

import ("net/http"; "os")

func main() { http.ListenAndServe(os.Args[1], http.FileServer(http.Dir(os.Args[2]))) }
EOF
(cd "$W" && go mod init serve >/dev/null 2>&1 && go build -o serve serve.go)
# The streaming floor: what any writer that downloads and writes at once
# (no buffering of the image) needs here. It moves the file's bytes as the
# agent does (two 4 MiB range requests in flight, O_DIRECT writes from
# three goroutines, blocks reserved first) and does nothing else: no hash,
# no conversion.
mkdir "$W/floor"
cat > "$W/floor/floor.go" <<'EOF'
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

const piece = 4 << 20

func main() {
	url, out := os.Args[1], os.Args[2]
	size, _ := strconv.ParseInt(os.Args[3], 10, 64)
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|syscall.O_DIRECT, 0o644)
	if err != nil {
		panic(err)
	}
	type job struct {
		b   []byte
		off int64
	}
	free, work := make(chan []byte, 6), make(chan job, 6)
	for range 6 {
		b := make([]byte, piece+4096)
		skip := int(-uintptr(unsafe.Pointer(&b[0])) & 4095)
		free <- b[skip : skip+piece]
	}
	var mu sync.Mutex
	var next int64
	var readers, writers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for b := range free {
				mu.Lock()
				off := next
				next += piece
				mu.Unlock()
				if off >= size {
					return
				}
				n := min(piece, size-off)
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(resp.Body, b[:n]); err != nil {
					panic(err)
				}
				resp.Body.Close()
				work <- job{b[:(n+4095)&^4095], off}
			}
		}()
	}
	for range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for j := range work {
				syscall.Fallocate(int(f.Fd()), 1, j.off, int64(len(j.b))) // FALLOC_FL_KEEP_SIZE
				if _, err := f.WriteAt(j.b, j.off); err != nil {
					panic(err)
				}
				free <- j.b[:piece]
			}
		}()
	}
	readers.Wait()
	close(work)
	writers.Wait()
	if err := f.Close(); err != nil {
		panic(err)
	}
}
EOF
(cd "$W/floor" && go mod init floor >/dev/null 2>&1 && go build -o ../floor-writer floor.go)

# Image: 3/4 random data, 1/4 zeros (one run in the middle), MBR.
mkdir "$W/www"
IMG="$W/www/disk.raw"
DATA=$((SIZE_MIB * 3 / 8))
head -c $((DATA << 20)) /dev/urandom > "$IMG"
head -c $(((SIZE_MIB / 4) << 20)) /dev/zero >> "$IMG"
head -c $(((SIZE_MIB - DATA - SIZE_MIB / 4) << 20)) /dev/urandom >> "$IMG"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$IMG"
qemu-img convert -f raw -O qcow2 "$IMG" "$W/www/disk.qcow2"
SHA_RAW=$(sha256sum "$IMG" | cut -d' ' -f1)
SHA_Q=$(sha256sum "$W/www/disk.qcow2" | cut -d' ' -f1)
"$W/serve" 127.0.0.1:18090 "$W/www" & SERVE=$!; PIDS+=($SERVE)
# CPU seconds (user + system) a process has used so far.
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
URL=http://127.0.0.1:18090
sleep 0.5

now() { date +%s.%N; }
rate() { awk -v s="$1" -v e="$2" -v m="$SIZE_MIB" 'BEGIN{printf "%6.2f s  %7.0f MiB/s", e-s, m/(e-s)}'; }
# WARM_SOURCE=1 reads the images back into the page cache after dropping it,
# for every contender alike: the source disk's read speed then drops out.
drop() {
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  if [ -n "${WARM_SOURCE:-}" ]; then cat "$W"/www/* > /dev/null; fi
}

agent_write() { # $1 = file name, $2 = format, $3 = sha256
  rm -f "$W/disk.img"; truncate -s $(((SIZE_MIB + 256) << 20)) "$W/disk.img"
  echo "ipa-agent-token=$TOKEN" > "$W/cmdline"
  "$W/ferric-agent" --cmdline "$W/cmdline" --api-url http://127.0.0.1:1 --listen 127.0.0.1:18091 \
    --advertise-host 127.0.0.1 --mac 52:54:00:00:00:99 --disk "$W/disk.img" --min-root-size 1 \
    --lookup-min 1h --lookup-max 1h 2>"$W/agent.log" & local pid=$!; PIDS+=($pid)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18091) 2>/dev/null && break; sleep 0.1; done
  drop
  local srv0; srv0=$(cpu "$SERVE")
  local s e; s=$(now); S=$s
  curl -sf -XPOST "http://127.0.0.1:18091/v1/commands/?wait=true&agent_token=$TOKEN" -d \
    "{\"name\":\"deploy.execute_deploy_step\",\"params\":{\"step\":{\"step\":\"write_image\",\"interface\":\"deploy\",\"args\":{\"image_info\":{\"id\":\"$1\",\"urls\":[\"$URL/$1\"],\"disk_format\":\"$2\",\"os_hash_algo\":\"sha256\",\"os_hash_value\":\"$3\"}}}}}" > "$W/res.json"
  sync "$W/disk.img"; e=$(now); E=$e
  grep -q '"SUCCEEDED"' "$W/res.json" || { cat "$W/res.json"; tail "$W/agent.log"; exit 1; }
  local hwm; hwm=$(awk '/VmHWM/{print $2/1024 " MiB"}' /proc/$pid/status)
  local cpus; cpus="cpu: agent $(cpu "$pid") s, http server $(awk -v a="$(cpu "$SERVE")" -v b="$srv0" 'BEGIN{printf "%.2f", a-b}') s"
  kill $pid; wait $pid 2>/dev/null || true
  cmp -n $((SIZE_MIB << 20)) "$W/disk.img" "$IMG" >/dev/null && ok=identical || ok=DIFFERS
  EXTRA="peak RSS $hwm, $ok, $(grep -o 'sync_seconds=[0-9.]*' "$W/agent.log" | head -1), $cpus"
}

# Every measurement runs ROUNDS times, interleaved (this machine's disk and
# loopback vary from run to run); each run is printed and the median last.
ROUNDS="${ROUNDS:-3}"
RES="$W/results"; : > "$RES"
record() { # $1 = label, $2 = start, $3 = end, $4 = extra
  printf '%-44s%s  %s\n' "$1:" "$(rate "$2" "$3")" "${4:-}"
  echo "$1	$(awk -v s="$2" -v e="$3" 'BEGIN{print e-s}')" >> "$RES"
}
QSIZE=$(($(stat -c %s "$W/www/disk.qcow2") >> 20))
for round in $(seq "$ROUNDS"); do
  echo "== round $round: ${SIZE_MIB} MiB raw image, HTTP on loopback -> file (page cache dropped before each run)"
  agent_write disk.raw raw "$SHA_RAW"; record "ferric-agent write_image raw (sha256)" "$S" "$E" "$EXTRA"
  rm -f "$W/out"; drop; s=$(now); curl -s "$URL/disk.raw" | dd of="$W/out" bs=4M conv=fsync status=none; e=$(now)
  record "curl | dd bs=4M conv=fsync" "$s" "$e"
  rm -f "$W/out"; drop; s=$(now); curl -s "$URL/disk.raw" | tee >(sha256sum > "$W/sum") | dd of="$W/out" bs=4M conv=fsync status=none; e=$(now)
  record "curl | tee >(sha256sum) | dd conv=fsync" "$s" "$e"
  echo "== round $round: qcow2 ($QSIZE MiB file, ${SIZE_MIB} MiB virtual)"
  agent_write disk.qcow2 qcow2 "$SHA_Q"; record "ferric-agent write_image qcow2 (sha256)" "$S" "$E" "$EXTRA"
  rm -f "$W/out"; drop; s=$(now)
  { TIMEFORMAT='cpu: qemu-img %U s user + %S s system'; time qemu-img convert -f qcow2 -O raw "$W/www/disk.qcow2" "$W/out"; } 2> "$W/qtime"
  sync "$W/out"; e=$(now)
  record "qemu-img convert (local file, no hash)" "$s" "$e" "$(cat "$W/qtime")"
  rm -f "$W/out"; drop; s=$(now); qemu-img convert -t none -S 0 -f qcow2 -O raw "$W/www/disk.qcow2" "$W/out"; e=$(now)
  record "qemu-img convert -t none -S 0 (IPA-like)" "$s" "$e"
  rm -f "$W/out"; drop; s=$(now); "$W/floor-writer" "$URL/disk.qcow2" "$W/out" "$(stat -c %s "$W/www/disk.qcow2")"; e=$(now)
  record "floor: download + O_DIRECT write, no more" "$s" "$e"
done
echo "== median of $ROUNDS rounds (${SIZE_MIB} MiB virtual)"
awk -F'\t' -v m="$SIZE_MIB" '
  { if (!($1 in n)) order[++k] = $1; v[$1, ++n[$1]] = $2 }
  END {
    for (i = 1; i <= k; i++) {
      l = order[i]; c = n[l]
      for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[l, b] < v[l, a]) { t = v[l, a]; v[l, a] = v[l, b]; v[l, b] = t }
      med = (c % 2) ? v[l, (c + 1) / 2] : (v[l, c / 2] + v[l, c / 2 + 1]) / 2
      printf "%-44s%6.2f s  %7.0f MiB/s\n", l ":", med, m / med
      t_[l] = med
    }
    r = t_["curl | tee >(sha256sum) | dd conv=fsync"] / t_["ferric-agent write_image raw (sha256)"]
    q = t_["qemu-img convert (local file, no hash)"] / t_["ferric-agent write_image qcow2 (sha256)"]
    printf "raw with checksum vs the curl|tee|dd limit: %.2fx (target >= 0.9x)\n", r
    printf "qcow2 vs qemu-img convert from a local file: %.2fx (target >= 0.8x)\n", q
    f = t_["floor: download + O_DIRECT write, no more"]
    printf "qcow2 vs the streaming floor (the same bytes downloaded and written, nothing else): %.2fx\n", f / t_["ferric-agent write_image qcow2 (sha256)"]
    printf "the streaming floor vs qemu-img convert: %.2fx\n", t_["qemu-img convert (local file, no hash)"] / f
  }' "$RES"
