#!/usr/bin/env bash
# Compile heat.c on first use (once per node, into node-local storage), then run it.
#   bash run.sh ALPHA NX DT T_END
# Several workers may start at once: each compiles to a private name and renames it into
# place, which is atomic, so nobody ever runs a half-written binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin_dir="${MEXPLORE_LOCAL_DIR:-${TMPDIR:-/tmp}}/bin"
binary="$bin_dir/heat"
if [ ! -x "$binary" ] || [ "$here/heat.c" -nt "$binary" ]; then
  mkdir -p "$bin_dir"
  "${CC:-cc}" -O2 -o "$binary.$$" "$here/heat.c" -lm
  mv -f "$binary.$$" "$binary"
fi
exec "$binary" "$@"
