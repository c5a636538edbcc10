#!/bin/bash
# build.sh AGENT [OUTDIR]
#
# Builds ferric's deploy ramdisk (what `make ramdisk` calls):
#   OUTDIR/ferric-deploy.kernel     Debian's cloud kernel (linux-image-cloud-amd64), or
#                                   the generic one with KERNEL_META=linux-image-amd64
#   OUTDIR/ferric-deploy.initramfs  gzip'd newc cpio: AGENT as /init + kernel modules
# OUTDIR defaults to ./bin. AGENT must be a static binary
# (CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' ./ipa/cmd/ferric-agent).
#
# The kernel package is fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`: it is never installed. Inside the initramfs:
#   /init                          the agent
#   /lib/modules/NAME.ko           the modules below and their dependencies (uncompressed)
#   /etc/modules.order             their file names, one a line, in load order
#                                  (load each with finit_module in this order)
#   /etc/ferric-ramdisk            KERNEL=<version> and MODULES=<list>
#   /dev /proc /sys /run /tmp      empty mount points (the agent mounts devtmpfs etc.)
#
# Environment:
#   MODULES     modules to include (default below); dependencies are added
#   OPTIONAL_MODULES  included when the kernel has them, skipped otherwise (default:
#               ipmi_si ipmi_devintf, the in-band IPMI device the agent reads the BMC's
#               address from (the cloud kernel has no IPMI drivers, the generic one has);
#               efivarfs, the EFI variables UEFI boot entries are written to;
#               ahci ata_piix sr_mod, the virtual media CD drive holding config-2;
#               8021q bonding, the VLANs and bonds of network_data.json;
#               md_mod raid0 raid1 raid10, the Linux md arrays of software RAID)
#   TOOLS       host programs copied in with the shared libraries they need (ldd), when
#               the host has them (default: mdadm, which builds software RAID; Debian
#               package mdadm; busybox, the rescue user's shell and tools over SSH:
#               /bin/sh and its other applets are links to it; Debian package
#               busybox); a missing one is left out with a note
#   KERNEL_META kernel metapackage to follow (default linux-image-cloud-amd64;
#               linux-image-amd64 for machines whose BMC the agent should read in-band)
#   KERNEL_DEB  use this kernel .deb instead of downloading one
#   KERNEL_PKG  kernel package to download (default: what KERNEL_META depends on)
#   CACHE       where downloaded .debs and the unpacked kernel are kept
#               (default /var/cache/ferric when writable, else ~/.cache/ferric)
#   SOURCE_DATE_EPOCH  timestamp of every file in the cpio (default 0): same inputs, same bytes
# Needs: apt-get, dpkg-deb, depmod (kmod), cpio, gzip; xz/zstd only for compressed modules.
set -euo pipefail

usage() { sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac
agent=$1 out=${2:-bin}
MODULES=${MODULES:-"virtio_pci virtio_net virtio_blk virtio_scsi sd_mod"}
OPTIONAL_MODULES=${OPTIONAL_MODULES-"ipmi_si ipmi_devintf efivarfs ahci ata_piix sr_mod 8021q bonding md_mod raid0 raid1 raid10"}
TOOLS=${TOOLS-"mdadm busybox"}
KERNEL_META=${KERNEL_META:-linux-image-cloud-amd64}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}

die() { echo "ramdisk: $*" >&2; exit 1; }
[ -f "$agent" ] || die "agent binary $agent not found (build ./ipa/cmd/ferric-agent first)"
[ -x "$agent" ] || die "agent binary $agent is not executable"
if LC_ALL=C grep -qa -e '/lib64/ld-linux' -e '/lib/ld-linux' "$agent"; then
  die "agent binary $agent is dynamically linked: build it with CGO_ENABLED=0"
fi
for tool in dpkg-deb depmod cpio gzip; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian packages dpkg, kmod, cpio, gzip)"
done

if [ -z "${CACHE:-}" ]; then
  if mkdir -p /var/cache/ferric 2>/dev/null && [ -w /var/cache/ferric ]; then CACHE=/var/cache/ferric
  else CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ferric; fi
fi
mkdir -p "$CACHE/debs" "$out"

# 1. The kernel package.
if [ -n "${KERNEL_DEB:-}" ]; then
  deb=$KERNEL_DEB
else
  pkg=${KERNEL_PKG:-$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')}
  [ -n "$pkg" ] || die "cannot resolve $KERNEL_META (run apt-get update, or set KERNEL_DEB)"
  deb=$(ls "$CACHE/debs/${pkg}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    echo "ramdisk: downloading $pkg" >&2
    (cd "$CACHE/debs" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
    deb=$(ls "$CACHE/debs/${pkg}"_*.deb | head -1)
  fi
fi
kroot=$CACHE/kroot-$(basename "$deb" .deb)
if [ ! -d "$kroot/lib/modules" ]; then
  rm -rf "$kroot.tmp"
  dpkg-deb -x "$deb" "$kroot.tmp"
  mv "$kroot.tmp" "$kroot"
fi
kver=$(ls "$kroot/lib/modules" | head -1)
mdir=$kroot/lib/modules/$kver
[ -f "$mdir/modules.dep" ] || depmod -b "$kroot" "$kver"
kernel=$(ls "$kroot"/boot/vmlinuz-* | head -1)

# 2. Modules in dependency order (modules.dep lists a module's dependencies,
#    deepest last; load them in reverse).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{dev,proc,sys,run,tmp,etc,lib/modules}
order=()
add() { local m; for m in "${order[@]}"; do [ "$m" = "$1" ] && return 0; done; order+=("$1"); }
optional=" $OPTIONAL_MODULES "
for want in $MODULES $OPTIONAL_MODULES; do
  w=${want//-/_}
  line=$(grep -E "/(${w}|${w//_/-})\.ko(\.[a-z]+)?:" "$mdir/modules.dep" || true)
  if [ -z "$line" ]; then
    if grep -qE "/(${w}|${w//_/-})\.ko" "$mdir/modules.builtin" 2>/dev/null; then
      echo "ramdisk: $want is built into the kernel" >&2; continue
    fi
    if [[ $optional == *" $want "* ]]; then
      echo "ramdisk: optional module $want is not in $kver: left out" >&2; continue
    fi
    die "module $want not found in $kver"
  fi
  path=${line%%:*}
  read -r -a deps <<< "${line#*:}"
  for ((i=${#deps[@]}-1; i>=0; i--)); do add "${deps[i]}"; done
  add "$path"
done
: > "$stage/etc/modules.order"
for p in "${order[@]}"; do
  name=$(basename "$p"); name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
  case $p in
    *.ko.xz)  xz -dc "$mdir/$p" > "$stage/lib/modules/$name" ;;
    *.ko.zst) zstd -qdc "$mdir/$p" > "$stage/lib/modules/$name" ;;
    *.ko.gz)  gzip -dc "$mdir/$p" > "$stage/lib/modules/$name" ;;
    *)        cp "$mdir/$p" "$stage/lib/modules/$name" ;;
  esac
  echo "$name" >> "$stage/etc/modules.order"
done
printf 'KERNEL=%s\nMODULES=%s\n' "$kver" "$(tr '\n' ' ' < "$stage/etc/modules.order" | sed 's/ $//')" > "$stage/etc/ferric-ramdisk"
install -m 0755 "$agent" "$stage/init"
# Host programs (mdadm) and the libraries and loader they link, at the same paths.
for tool in $TOOLS; do
  bin=$(command -v "$tool" || true)
  if [ -z "$bin" ]; then echo "ramdisk: $tool is not installed here: left out" >&2; continue; fi
  bin=$(readlink -f "$bin")
  mkdir -p "$stage/sbin" && install -m 0755 "$bin" "$stage/sbin/$tool"
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
  # busybox: /bin/sh and the other applets are links to it (never over a
  # file the ramdisk already has, such as /init or /sbin/mdadm).
  if [ "$tool" = busybox ]; then
    for app in $("$bin" --list-full); do
      [ -e "$stage/$app" ] || [ -L "$stage/$app" ] && continue
      mkdir -p "$stage/$(dirname "$app")"
      ln -s /sbin/busybox "$stage/$app"
    done
  fi
done

# 3. A reproducible cpio: sorted names, fixed owners and timestamps.
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null -o -H newc --owner=0:0 --reproducible --quiet) | gzip -9 -n > "$out/ferric-deploy.initramfs.tmp"
mv "$out/ferric-deploy.initramfs.tmp" "$out/ferric-deploy.initramfs"
cp "$kernel" "$out/ferric-deploy.kernel"
echo "ramdisk: kernel $kver: $out/ferric-deploy.kernel ($(stat -c %s "$out/ferric-deploy.kernel") bytes)"
echo "ramdisk: $out/ferric-deploy.initramfs ($(stat -c %s "$out/ferric-deploy.initramfs") bytes); modules: $(tr '\n' ' ' < "$stage/etc/modules.order")"
