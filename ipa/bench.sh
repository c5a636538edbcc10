#!/usr/bin/env bash
# Image write benchmark: ferric-agent's write_image (raw and qcow2, streamed
# from a local HTTP server) side by side with `curl | dd conv=fsync`,
# `curl | tee >(sha256sum) | dd` and `qemu-img convert`, plus the agent's
# peak RSS (VmHWM), its final sync and this machine's streaming floor (the
# image file's bytes downloaded and written with O_DIRECT, then synced,
# nothing else).
#
# Two targets: a file used as disk, and (root, losetup) a block device: a
# loop device with direct I/O over a file written in full first, so that
# neither the agent nor the floor allocates its blocks. The agent / floor
# ratios of both targets are printed side by side for every round and as
# medians, with every final sync.
#
# usage: [ROUNDS=3] [TARGETS="file block"] [WARM_SOURCE=1] ipa/bench.sh [SIZE_MIB]
#        (default 2048; needs curl, qemu-img, sfdisk; losetup and root for "block")
set -euo pipefail
SIZE_MIB="${1:-2048}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
W="$(mktemp -d "${TMPDIR:-/tmp}/ferric-bench.XXXXXX")"
PIDS=()
LOOPDEV=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$LOOPDEV" ]; then losetup -d "$LOOPDEV" 2>/dev/null || true; fi
  rm -rf "$W"
}
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
# three goroutines, blocks of a regular file reserved first), and syncs the
# target as the agent does before it reports success (the device's cache
# flush and the filesystem's journal are part of a write), and does
# nothing else: no hash, no conversion. It prints the sync's seconds.
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
	"time"
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
	st, err := f.Stat()
	if err != nil {
		panic(err)
	}
	regular := st.Mode().IsRegular()
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
				if regular {
					syscall.Fallocate(int(f.Fd()), 1, j.off, int64(len(j.b))) // FALLOC_FL_KEEP_SIZE
				}
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
	start := time.Now()
	if err := f.Sync(); err != nil {
		panic(err)
	}
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
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

# Targets: a file, and a loop device with direct I/O over a file written in
# full first (its blocks allocated, as a disk's are).
TARGETS="${TARGETS:-file block}"
TLIST=()
for t in $TARGETS; do
  case "$t" in
  file) TLIST+=(file) ;;
  block)
    if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null; then
      echo "== block target skipped: it needs root and losetup"; continue
    fi
    dd if=/dev/zero of="$W/loop-backing.img" bs=4M count=$(((SIZE_MIB + 256) / 4)) oflag=direct status=none
    if ! LOOPDEV=$(losetup --direct-io=on --find --show "$W/loop-backing.img" 2>&1); then
      echo "== block target skipped: losetup: $LOOPDEV"; LOOPDEV=""; continue
    fi
    echo "== block target: $LOOPDEV (direct I/O $(cat "/sys/block/$(basename "$LOOPDEV")/loop/dio"), $(((SIZE_MIB + 256) / 4 * 4)) MiB, over a written file)"
    TLIST+=(block) ;;
  *) echo "unknown target $t (file, block)" >&2; exit 2 ;;
  esac
done
[ ${#TLIST[@]} -gt 0 ] || { echo "no target to write to" >&2; exit 1; }
# target_path $1 = file|block: where a contender writes; a file is made
# anew (sparse, 256 MiB larger than the image), the device is reused.
target_path() {
  if [ "$1" = block ]; then echo "$LOOPDEV"; return; fi
  rm -f "$W/disk.img"; truncate -s $(((SIZE_MIB + 256) << 20)) "$W/disk.img"; echo "$W/disk.img"
}

now() { date +%s.%N; }
rate() { awk -v s="$1" -v e="$2" -v m="$SIZE_MIB" 'BEGIN{printf "%6.2f s  %7.0f MiB/s", e-s, m/(e-s)}'; }
# WARM_SOURCE=1 reads the images back into the page cache after dropping it,
# for every contender alike: the source disk's read speed then drops out.
drop() {
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  if [ -n "${WARM_SOURCE:-}" ]; then cat "$W"/www/* > /dev/null; fi
}

agent_write() { # $1 = file name, $2 = format, $3 = sha256, $4 = target path
  echo "ipa-agent-token=$TOKEN" > "$W/cmdline"
  "$W/ferric-agent" --cmdline "$W/cmdline" --api-url http://127.0.0.1:1 --listen 127.0.0.1:18091 \
    --advertise-host 127.0.0.1 --mac 52:54:00:00:00:99 --disk "$4" --min-root-size 1 \
    --lookup-min 1h --lookup-max 1h 2>"$W/agent.log" & local pid=$!; PIDS+=($pid)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18091) 2>/dev/null && break; sleep 0.1; done
  drop
  local srv0; srv0=$(cpu "$SERVE")
  local s e; s=$(now); S=$s
  curl -sf -XPOST "http://127.0.0.1:18091/v1/commands/?wait=true&agent_token=$TOKEN" -d \
    "{\"name\":\"deploy.execute_deploy_step\",\"params\":{\"step\":{\"step\":\"write_image\",\"interface\":\"deploy\",\"args\":{\"image_info\":{\"id\":\"$1\",\"urls\":[\"$URL/$1\"],\"disk_format\":\"$2\",\"os_hash_algo\":\"sha256\",\"os_hash_value\":\"$3\"}}}}}" > "$W/res.json"
  sync "$4"; e=$(now); E=$e
  grep -q '"SUCCEEDED"' "$W/res.json" || { cat "$W/res.json"; tail "$W/agent.log"; exit 1; }
  local hwm; hwm=$(awk '/VmHWM/{printf "%.0f MiB", $2/1024}' /proc/$pid/status)
  local cpus; cpus="cpu: agent $(cpu "$pid") s, http server $(awk -v a="$(cpu "$SERVE")" -v b="$srv0" 'BEGIN{printf "%.2f", a-b}') s"
  kill $pid; wait $pid 2>/dev/null || true
  cmp -n $((SIZE_MIB << 20)) "$4" "$IMG" >/dev/null && ok=identical || ok=DIFFERS
  field() { grep -o "$1=[0-9.e+-]*" "$W/agent.log" | head -1 | cut -d= -f2; }
  SYNC=$(field sync_seconds); RSS=$hwm
  EXTRA="peak RSS $hwm, $ok, final sync $(printf '%.3f' "${SYNC:-0}") s, page cache $(field buffered_bytes) B, O_DIRECT $(field direct_bytes) B, machine dirty at sync $(field dirty_at_sync) B, $cpus"
}

floor_write() { # $1 = file name, $2 = target path
  drop; local s e; s=$(now)
  SYNC=$("$W/floor-writer" "$URL/$1" "$2" "$(stat -c %s "$W/www/$1")"); e=$(now); S=$s; E=$e
}

# Every measurement runs ROUNDS times, interleaved (this machine's disk and
# loopback vary from run to run); each run is printed and the median last.
ROUNDS="${ROUNDS:-3}"
RES="$W/results"; : > "$RES"
record() { # $1 = label, $2 = start, $3 = end, $4 = extra, $5 = final sync seconds, $6 = peak RSS
  printf '%-52s%s  %s\n' "$1:" "$(rate "$2" "$3")" "${4:-}"
  echo "$1	$(awk -v s="$2" -v e="$3" 'BEGIN{print e-s}')	${5:-}	${6:-}" >> "$RES"
}
# summary: the agent / floor table of one round ($1) or of the medians
# (no argument) from the results file, file and block side by side.
summary() {
  awk -F'\t' -v round="${1:-}" -v rounds="$ROUNDS" -v targets="${TLIST[*]}" '
    { if (!($1 in n)) order[++k] = $1; c = ++n[$1]; v[$1, c] = $2; sy[$1, c] = $3; rss[$1, c] = $4 }
    function med(l, arr,   c, a, b, t, x) {
      c = n[l]; if (!c) return ""
      for (a = 1; a <= c; a++) x[a] = (arr == "t") ? v[l, a] : sy[l, a]
      for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (x[b] < x[a]) { t = x[a]; x[a] = x[b]; x[b] = t }
      return (c % 2) ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
    }
    function get(l, arr) { if (round == "") return med(l, arr); return (arr == "t") ? v[l, round] : sy[l, round] }
    function maxrss(l,   a, m) { m = 0; for (a = 1; a <= n[l]; a++) if (rss[l, a] + 0 > m) m = rss[l, a] + 0; return m }
    END {
      nt = split(targets, T, " ")
      printf "%-7s", ""; for (i = 1; i <= nt; i++) printf "| %-6s %7s %7s %7s %7s %11s ", T[i], "agent", "sync", "floor", "sync", "agent/floor"; print ""
      split("raw qcow2", F, " ")
      for (f = 1; f <= 2; f++) {
        printf "%-7s", F[f]
        for (i = 1; i <= nt; i++) {
          a = "agent " F[f] " -> " T[i]; fl = "floor " F[f] " -> " T[i]
          at = get(a, "t"); as = get(a, "s"); ft = get(fl, "t"); fs = get(fl, "s")
          if (at == "" || ft == "") { printf "| %-51s ", "(not run)"; continue }
          printf "| %-6s %6.2fs %6.3fs %6.2fs %6.3fs %10.2fx ", "", at, as, ft, fs, ft / at
        }
        print ""
      }
      if (round == "") {
        printf "peak RSS of the agent over all rounds:"
        for (i = 1; i <= nt; i++) for (f = 1; f <= 2; f++) printf " %s %s %d MiB;", F[f], T[i], maxrss("agent " F[f] " -> " T[i])
        print ""
      }
    }' "$RES"
}
QSIZE=$(($(stat -c %s "$W/www/disk.qcow2") >> 20))
for round in $(seq "$ROUNDS"); do
  echo "== round $round: ${SIZE_MIB} MiB raw image and its qcow2 ($QSIZE MiB), HTTP on loopback (page cache dropped before each run)"
  for tg in "${TLIST[@]}"; do
    agent_write disk.raw raw "$SHA_RAW" "$(target_path "$tg")"
    record "agent raw -> $tg" "$S" "$E" "$EXTRA" "$SYNC" "${RSS% MiB}"
    floor_write disk.raw "$(target_path "$tg")"; record "floor raw -> $tg" "$S" "$E" "final sync $SYNC s" "$SYNC"
    agent_write disk.qcow2 qcow2 "$SHA_Q" "$(target_path "$tg")"
    record "agent qcow2 -> $tg" "$S" "$E" "$EXTRA" "$SYNC" "${RSS% MiB}"
    floor_write disk.qcow2 "$(target_path "$tg")"; record "floor qcow2 -> $tg" "$S" "$E" "final sync $SYNC s" "$SYNC"
    out=$(target_path "$tg"); drop; s=$(now)
    if [ "$tg" = block ]; then n=-n; else n=; fi
    qemu-img convert -t none -S 0 $n -f qcow2 -O raw "$W/www/disk.qcow2" "$out"; e=$(now)
    record "qemu-img convert -t none -S 0 (IPA-like) -> $tg" "$s" "$e"
  done
  if [[ " ${TLIST[*]} " == *" file "* ]]; then
    rm -f "$W/out"; drop; s=$(now); curl -s "$URL/disk.raw" | dd of="$W/out" bs=4M conv=fsync status=none; e=$(now)
    record "curl | dd bs=4M conv=fsync -> file" "$s" "$e"
    rm -f "$W/out"; drop; s=$(now); curl -s "$URL/disk.raw" | tee >(sha256sum > "$W/sum") | dd of="$W/out" bs=4M conv=fsync status=none; e=$(now)
    record "curl | tee >(sha256sum) | dd conv=fsync -> file" "$s" "$e"
    rm -f "$W/out"; drop; s=$(now)
    { TIMEFORMAT='cpu: qemu-img %U s user + %S s system'; time qemu-img convert -f qcow2 -O raw "$W/www/disk.qcow2" "$W/out"; } 2> "$W/qtime"
    sync "$W/out"; e=$(now)
    record "qemu-img convert (local file, no hash) -> file" "$s" "$e" "$(cat "$W/qtime")"
  fi
  echo "-- round $round: agent / floor (floor time / agent time; sync = the final sync's seconds)"
  summary "$round"
done
echo "== median of $ROUNDS rounds (${SIZE_MIB} MiB virtual)"
awk -F'\t' -v m="$SIZE_MIB" '
  { if (!($1 in n)) order[++k] = $1; v[$1, ++n[$1]] = $2 }
  END {
    for (i = 1; i <= k; i++) {
      l = order[i]; c = n[l]
      for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[l, b] < v[l, a]) { t = v[l, a]; v[l, a] = v[l, b]; v[l, b] = t }
      med = (c % 2) ? v[l, (c + 1) / 2] : (v[l, c / 2] + v[l, c / 2 + 1]) / 2
      printf "%-52s%6.2f s  %7.0f MiB/s\n", l ":", med, m / med
      t_[l] = med
    }
    if (("curl | tee >(sha256sum) | dd conv=fsync -> file") in t_) {
      printf "raw with checksum vs the curl|tee|dd limit: %.2fx (target >= 0.9x)\n", t_["curl | tee >(sha256sum) | dd conv=fsync -> file"] / t_["agent raw -> file"]
      printf "qcow2 vs qemu-img convert from a local file: %.2fx (target >= 0.8x)\n", t_["qemu-img convert (local file, no hash) -> file"] / t_["agent qcow2 -> file"]
    }
  }' "$RES"
echo "-- medians: agent / floor (target: 0.9x or better, raw and qcow2, file and block; final sync under 0.1 s; peak RSS under 64 MiB)"
summary
