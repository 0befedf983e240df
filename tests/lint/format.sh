#!/usr/bin/env bash
# Every tracked C file is formatted by the committed .clang-format (clang-format 14).
# Exits 77 (skipped) when clang-format or git is missing.
set -uo pipefail
cd "$1" || exit 1
command -v clang-format >/dev/null || { echo "format: clang-format not installed"; exit 77; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "format: not a git checkout"; exit 77; }
fail=0
while read -r f; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format: $f differs from .clang-format (run clang-format -i $f)"
        fail=1
    fi
done < <(git ls-files '*.c' '*.h')
[ "$fail" = 0 ] && echo "format: ok"
exit "$fail"
