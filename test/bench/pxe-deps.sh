#!/usr/bin/env bash
# Installs what `make bench-pxe` compares ferric with and loads it with:
# kea (kea-dhcp4-server, and perfdhcp from kea-admin), dnsmasq (dnsmasq-base,
# no service), tftpd-hpa and the iPXE binaries. Idempotent; needs root.
# Package scripts are kept from starting services (no init system here).
set -euo pipefail
pkgs=(kea-dhcp4-server kea-admin dnsmasq-base tftpd-hpa ipxe iproute2 util-linux)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
