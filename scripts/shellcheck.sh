#!/usr/bin/env bash
# Runs shellcheck over every bash script the project ships or uses.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.sh' '.ci/run' | sort -u)
((${#files[@]})) || { echo "shellcheck: no files"; exit 0; }
shellcheck --external-sources --severity=style "${files[@]}"
echo "shellcheck: ${#files[@]} files clean"
