#!/bin/bash
# mkimage.sh OUT [SIZE_MIB]
#
# Builds the lab's test OS: a raw disk image bootable by BIOS and by UEFI
# (MBR + one FAT16 partition at 1 MiB holding SYSLINUX for BIOS, SYSLINUX's
# EFI loader as the removable-media path EFI/BOOT/BOOTX64.EFI for UEFI,
# Debian's cloud kernel and a small initramfs whose /init is ferric-testos),
# without loop devices or mounts: sfdisk, mkfs.vfat --offset, syslinux
# --offset, mtools.
#
# At boot ferric-testos finds the config drive (label config-2), reads
# openstack/latest/meta_data.json, prints "ferric-testos: booted uuid=...
# hostname=..." on ttyS0 and, if user_data holds an http(s) URL, POSTs
# {"uuid","hostname","name"} there (network: network_data.json static ipv4,
# else DHCP), then powers off. Kernel parameter ferric.testos.stay=1 keeps it up.
# Its in-server agent sets root's password (admin_pass) and keys (public_keys)
# and, when vendor_data2.json names a phone-home (a server built through the
# Compute API), reports DEPLOYING/DEPLOYED there and stays up serving
# changePassword (test/cmd/ferric-testos/agent.go).
#
# The kernel and modules come from ipa/ramdisk/build.sh (apt-get download of
# linux-image-cloud-amd64, never installed), with its optional md modules and
# the host's mdadm (TOOLS): ferric-testos assembles software RAID arrays, as
# an OS deployed onto one does. Needs: go, syslinux,
# syslinux-common, syslinux-efi, mtools, dosfstools, fdisk, plus build.sh's
# tools.
# Env: TESTOS (a prebuilt ferric-testos binary), CACHE (as build.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
out=$1 size=${2:-64}
for tool in sfdisk mkfs.vfat syslinux mcopy; do
  command -v "$tool" >/dev/null || { echo "mkimage: $tool missing (apt-get install fdisk dosfstools syslinux syslinux-common mtools)" >&2; exit 1; }
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr" ] || { echo "mkimage: $mbr missing (apt-get install syslinux-common)" >&2; exit 1; }
efi=/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi ldefi=/usr/lib/syslinux/modules/efi64/ldlinux.e64
[ -f "$efi" ] && [ -f "$ldefi" ] || { echo "mkimage: $efi or $ldefi missing (apt-get install syslinux-efi syslinux-common)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
testos=${TESTOS:-}
if [ -z "$testos" ]; then
  testos=$work/ferric-testos
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$testos" ./test/cmd/ferric-testos)
fi
MODULES="virtio_pci virtio_net virtio_blk virtio_scsi sd_mod isofs vfat nls_cp437 nls_ascii nls_utf8" \
  "$root/ipa/ramdisk/build.sh" "$testos" "$work" >&2
rm -f "$out"; truncate -s "${size}M" "$out"
echo 'start=2048, type=6, bootable' | sfdisk -q "$out"
sectors=$(( size * 2048 - 2048 ))
mkfs.vfat -F 16 -n TESTOS --offset 2048 "$out" $(( sectors / 2 )) >/dev/null
syslinux --install --offset $(( 2048 * 512 )) "$out"
dd if="$mbr" of="$out" bs=440 count=1 conv=notrunc status=none
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nSERIAL 0 115200\nLABEL linux\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND console=ttyS0 loglevel=4 panic=-1\n' > "$work/syslinux.cfg"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$out@@1M" "$work/ferric-deploy.kernel" ::vmlinuz
mcopy -i "$out@@1M" "$work/ferric-deploy.initramfs" ::initrd.img
mcopy -i "$out@@1M" "$work/syslinux.cfg" ::syslinux.cfg
# UEFI: syslinux.efi reads ldlinux.e64 and syslinux.cfg from its own folder.
mmd -i "$out@@1M" ::EFI ::EFI/BOOT
mcopy -i "$out@@1M" "$efi" ::EFI/BOOT/BOOTX64.EFI
mcopy -i "$out@@1M" "$ldefi" ::EFI/BOOT/ldlinux.e64
mcopy -i "$out@@1M" "$work/syslinux.cfg" ::EFI/BOOT/syslinux.cfg
echo "mkimage: $out ($size MiB): $(mdir -b -i "$out@@1M" :: | tr '\n' ' ')"
