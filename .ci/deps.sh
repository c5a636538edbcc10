#!/usr/bin/env bash
# Installs the Debian packages ferric's tests and lab use. Idempotent; needs root.
set -euo pipefail
pkgs=(ipmitool openipmi qemu-system-x86 qemu-utils ipxe ipxe-qemu tftp-hpa atftp xorriso genisoimage iproute2
      socat isc-dhcp-client syslinux syslinux-common syslinux-efi isolinux grub-efi-amd64-bin grub-common ovmf mtools dosfstools fdisk cpio kmod bc util-linux mdadm busybox
      python3-openstackclient python3-ironicclient python3-glanceclient kea-admin python3-nova keystone python3-ironic
      chromium)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Keep package scripts from trying to start services (no init system here).
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Neutron for test/neutron, in a step of its own that may fail: its
# package set is large and has not yet been installed on a machine of ours
# (the mirror did not resolve when it was added). Without it the
# neutron tests skip, naming the package; nothing else needs it.
if ! dpkg -s neutron-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  if [ ${#missing[@]} -eq 0 ]; then apt-get update -qq || true; fi
  if ! apt-get install -y -qq --no-install-recommends neutron-server >/dev/null; then
    echo "WARNING: .ci/deps.sh: could not install Debian's neutron-server; test/neutron (TestVIFSemantics, TestDeployBinding) will skip" >&2
  fi
fi
