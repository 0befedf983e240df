#!/bin/sh
# Runs a libFuzzer target for a bounded time without writing into the source tree: new
# inputs go to a temporary directory (removed afterwards), the checked-in corpora are only
# read, crash artifacts land in the current (build) directory.
# Usage: run_fuzz.sh <fuzzer> <seconds> <corpus dir>...   (FUZZ_SECONDS overrides <seconds>)
set -eu
bin=$1
secs=${FUZZ_SECONDS:-$2}
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/ordo-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
name=$(basename "$bin")
"$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$PWD/$name-" \
    "$work" "$@"
