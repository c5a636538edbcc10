#!/bin/bash
# mkconfigdrive.sh OUT UUID HOSTNAME [REPORT_URL]
# A VFAT config drive (label config-2) for trying the test OS without a
# conductor: openstack/latest/meta_data.json, and user_data = REPORT_URL.
# Made with mkfs.vfat and mtools: no loop device, no mount.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
out=$1 uuid=$2 host=$3 url=${4:-}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
rm -f "$out"; truncate -s 4M "$out"
mkfs.vfat -n config-2 "$out" >/dev/null 2>&1
printf '{"uuid": "%s", "hostname": "%s", "name": "%s"}\n' "$uuid" "$host" "$host" > "$work/meta_data.json"
printf '%s\n' "$url" > "$work/user_data"
export MTOOLS_SKIP_CHECK=1
mmd -i "$out" ::openstack ::openstack/latest
mcopy -i "$out" "$work/meta_data.json" ::openstack/latest/meta_data.json
[ -n "$url" ] && mcopy -i "$out" "$work/user_data" ::openstack/latest/user_data
echo "mkconfigdrive: $out"
