#!/usr/bin/env bash
# A developer's tool, not used by CI: runs test/neutron against upstream
# Neutron from source, at the versions Debian 12 ships (neutron-server
# 2:21.0.0 Zed, python3-neutron-lib 3.1.0, python3-os-ken 2.5.0,
# python3-designateclient 5.0.0, python3-setproctitle 1.3.1), for a machine
# where Debian's neutron-server cannot be installed. Every other dependency
# (oslo.*, pecan, keystonemiddleware, sqlalchemy, alembic, pyroute2, ...)
# must already be importable by /usr/bin/python3, as it is on a Debian 12
# with the packages of .ci/deps.sh (python3-nova, python3-ironic, keystone).
#
# Usage: test/neutron/run-upstream.sh [go test flags...]
#   e.g. test/neutron/run-upstream.sh -run TestVIFSemantics -v
# Environment:
#   NEUTRON_SRC      where the sources go (default ~/.cache/ferric-neutron-src)
#   NEUTRON_GIT_URL  clone URL pattern, {owner} and {name} replaced
#                    (default https://github.com/{owner}/{name}; a local
#                    mirror works too, e.g. /srv/mirror/{owner}+{name}/repo)
#   PYTHON           the interpreter (default /usr/bin/python3)
# It writes $NEUTRON_SRC/bin/neutron-server and neutron-db-manage, wrappers
# usable on their own, and runs `go test ./test/neutron/` with
# NEUTRON_SERVER, NEUTRON_DB_MANAGE and NEUTRON_PYTHONPATH pointing at them.
set -euo pipefail
args=("$@")
src=${NEUTRON_SRC:-$HOME/.cache/ferric-neutron-src}
default_url='https://github.com/{owner}/{name}'
url=${NEUTRON_GIT_URL:-$default_url}
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$src/bin"

# checkout owner name tag dir: the tag's tree in $src/dir, once.
checkout() {
  local owner=$1 name=$2 tag=$3 dir=$src/$4
  [ -e "$dir/.ferric-tag-$tag" ] && return
  local po='{owner}' pn='{name}'
  local u=${url//"$po"/$owner}; u=${u//"$pn"/$name}
  rm -rf "$dir"
  git clone -q --depth 1 --branch "$tag" "$u" "$dir" 2>/dev/null || git clone -q --branch "$tag" "$u" "$dir"
  touch "$dir/.ferric-tag-$tag"
}
checkout openstack neutron 21.0.0 neutron
checkout openstack neutron-lib 3.1.0 neutron-lib
checkout openstack os-ken 2.5.0 os-ken
checkout openstack python-designateclient 5.0.0 python-designateclient
checkout dvarrazzo py-setproctitle version-1.3.1 setproctitle

# Metadata (entry points: stevedore finds Neutron's plugins and drivers by
# them; pbr's version), as pip would install it.
for d in "neutron 21.0.0" "neutron-lib 3.1.0" "os-ken 2.5.0" "python-designateclient 5.0.0"; do
  set -- $d
  if ! ls "$src/$1"/*.egg-info/entry_points.txt >/dev/null 2>&1; then
    (cd "$src/$1" && PBR_VERSION=$2 "$py" setup.py -q egg_info >/dev/null)
  fi
done
# setproctitle is a C extension (neutron-lib imports it).
if ! ls "$src"/setproctitle/pkg/setproctitle/_setproctitle*.so >/dev/null 2>&1; then
  (cd "$src/setproctitle" && "$py" setup.py -q build_ext --inplace >/dev/null)
fi

pp=$src/neutron:$src/neutron-lib:$src/os-ken:$src/python-designateclient:$src/setproctitle/pkg
wrap() { # wrap name module:function [extra args]
  cat > "$src/bin/$1" <<W
#!/bin/sh
# $1 from the upstream sources in $src (written by ferric's test/neutron/run-upstream.sh)
PYTHONPATH=$pp\${PYTHONPATH:+:\$PYTHONPATH} exec $py -c 'import sys; sys.argv[0] = "$1"; from ${2%%:*} import ${2##*:}; sys.exit(${2##*:}())' "\$@" ${3:-}
W
  chmod +x "$src/bin/$1"
}
# Debian's package finds its api-paste.ini in /etc/neutron; the source's
# is in etc/, named by a last config file the server wrapper adds.
printf '[DEFAULT]\napi_paste_config = %s\n' "$src/neutron/etc/api-paste.ini" > "$src/upstream.conf"
wrap neutron-server neutron.cmd.eventlet.server:main "--config-file $src/upstream.conf"
wrap neutron-db-manage neutron.db.migration.cli:main

cd "$here/../.."
NEUTRON_SERVER=$src/bin/neutron-server NEUTRON_DB_MANAGE=$src/bin/neutron-db-manage NEUTRON_PYTHONPATH=$pp NEUTRON_PYTHON=$py \
  exec go test -count=1 ./test/neutron/ "${args[@]}"
