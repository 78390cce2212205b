#!/usr/bin/env bash
# The library's layers (cloak/CMakeLists.txt) include only downward:
#   core <- io <- models <- weights <- engine <- report <- pipeline
# and core and io never include libtorch. Prints each offending include and fails on any.
#   tests/layers.sh
set -euo pipefail
cd "$(dirname "$0")/../cloak"
layers=(core io models weights engine report pipeline)
rank() {
  for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo "unknown layer '$1'" >&2
  exit 2
}
bad=0
for layer in "${layers[@]}"; do
  own=$(rank "$layer")
  while IFS= read -r hit; do
    file=${hit%%:*}
    used=$(sed -E 's#.*"cloak/([a-z_]+)/.*#\1#' <<<"$hit")
    if [ "$(rank "$used")" -gt "$own" ]; then
      echo "cloak/$file: $layer includes $used, a layer above it: ${hit#*:}"
      bad=1
    fi
  done < <(grep -rHE '#include "cloak/' "$layer" || true)
done
for layer in core io; do
  if grep -rHE '#include <(torch|ATen|c10)/' "$layer"; then
    echo "cloak/$layer must build without libtorch"
    bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "every include goes downward across the ${#layers[@]} layers"
exit "$bad"
