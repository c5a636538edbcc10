#!/usr/bin/env bash
# Re-record Ironic 21.4's answers to the cases of cases.go: a fresh real
# Ironic (start-ironic.sh of the golden tools, empty database), the
# recorder, then Ironic stopped again. Usage, from the repository root:
#   GOLDEN=/path/to/golden test/ironicinput/record.sh
set -euo pipefail
GOLDEN="${GOLDEN:?directory of start-ironic.sh and stop-ironic.sh}"
export IRONIC_GOLDEN_STATE="${IRONIC_GOLDEN_STATE:-${TMPDIR:-/tmp}/ironicinput-ironic}"
"$GOLDEN/stop-ironic.sh" >/dev/null 2>&1 || true
"$GOLDEN/start-ironic.sh"
trap '"$GOLDEN/stop-ironic.sh" >/dev/null 2>&1 || true' EXIT
go run ./test/ironicinput/record -url http://127.0.0.1:6385 > test/ironicinput/testdata/ironic-21.4.jsonl.tmp
mv test/ironicinput/testdata/ironic-21.4.jsonl.tmp test/ironicinput/testdata/ironic-21.4.jsonl
wc -l test/ironicinput/testdata/ironic-21.4.jsonl
