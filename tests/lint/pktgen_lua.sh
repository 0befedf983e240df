#!/usr/bin/env bash
# The Pktgen-DPDK scripts under perf/pktgen/ parse as Lua 5.3 (Pktgen 23.06 embeds 5.3), and,
# with lua5.3 installed, run to the end against a stand-in for Pktgen's Lua API
# (pktgen_stub.lua: every pktgen.* name and argument count checked, synthetic stats),
# printing their result lines. Exits 77 when no Lua 5.3 compiler is installed.
# Usage: pktgen_lua.sh SOURCE_ROOT
set -euo pipefail
ROOT=${1:?usage: pktgen_lua.sh SOURCE_ROOT}
HERE=$(cd "$(dirname "$0")" && pwd)
LUAC=$(command -v luac5.3 || command -v luac || true)
[ -n "$LUAC" ] || { echo "pktgen_lua: SKIP: no luac5.3 (apt-get install lua5.3)" >&2; exit 77; }
TMP=$(mktemp -d /tmp/ordo-pktgen-lint.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
shopt -s nullglob
scripts=("$ROOT"/perf/pktgen/*.lua)
[ "${#scripts[@]}" -gt 0 ] || { echo "pktgen_lua: FAIL: no scripts in perf/pktgen" >&2; exit 1; }
for f in "${scripts[@]}"; do
    "$LUAC" -p -o "$TMP/luac.out" "$f" || { echo "pktgen_lua: FAIL: $f does not parse" >&2; exit 1; }
done
echo "pktgen_lua: ${#scripts[@]} scripts parse"
LUA=$(command -v lua5.3 || true)
[ -n "$LUA" ] || { echo "pktgen_lua: no lua5.3 interpreter: parse check only"; exit 0; }
export ORDO_DST_MAC=02:00:c6:12:00:0b ORDO_DST_IP=198.18.0.11 ORDO_SECS=2 ORDO_WARMUP_MS=0
export ORDO_SAMPLER_FILE="$TMP/samples.txt" ORDO_RESULT_FILE="$TMP/results.txt"
(cd "$ROOT" && "$LUA" "$HERE/pktgen_stub.lua" perf/pktgen/ordo_latency.lua) >"$TMP/lat.out"
grep -Eq '^ordo_latency: rate=10000 .*samples=1000 p50_us=25\.0 ' "$TMP/lat.out" ||
    { echo "pktgen_lua: FAIL: latency script result:" >&2; cat "$TMP/lat.out" >&2; exit 1; }
ORDO_RATES="1000 2000" "$LUA" "$HERE/pktgen_stub.lua" "$ROOT/perf/pktgen/ordo_throughput.lua" \
    >"$TMP/tput.out"
[ "$(grep -c '^ordo_throughput: offered=' "$TMP/tput.out")" -eq 2 ] ||
    { echo "pktgen_lua: FAIL: throughput script result:" >&2; cat "$TMP/tput.out" >&2; exit 1; }
[ "$(wc -l <"$ORDO_RESULT_FILE")" -eq 3 ] || { echo "pktgen_lua: FAIL: result file" >&2; exit 1; }
# A call outside the API is an error: the stand-in really checks names.
echo 'pktgen.no_such_call("0")' >"$TMP/bad.lua"
echo 'pktgen.quit()' >>"$TMP/bad.lua"
if "$LUA" "$HERE/pktgen_stub.lua" "$TMP/bad.lua" >/dev/null 2>&1; then
    echo "pktgen_lua: FAIL: the stand-in accepted an unknown pktgen call" >&2
    exit 1
fi
echo "pktgen_lua: OK (scripts ran against the API stand-in)"
