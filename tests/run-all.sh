#!/usr/bin/env bash
# The README's test command: installs what is missing, builds Ordo twice (release with
# jemalloc, and ASan+UBSan), runs every test suite, and ends with one line of totals
# "N passed, N failed, N skipped". Exits non-zero on any failure.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./.ci/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc)
build=${ORDO_BUILD:-build}
asan=${ORDO_BUILD_ASAN:-build-asan}
fuzz=${ORDO_BUILD_FUZZ:-build-fuzz}
logdir=$(mktemp -d /tmp/ordo-tests.XXXXXX)
failed_setup=0

configure() { # dir, args...
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

step() { # name, command...
    local name=$1
    shift
    echo "== $name"
    if ! "$@" >"$logdir/$name.log" 2>&1; then
        echo "ordo: $name failed; last lines of $logdir/$name.log:"
        tail -n 40 "$logdir/$name.log"
        failed_setup=$((failed_setup + 1))
        return 1
    fi
}

# libFuzzer budgets come from the meson option fuzz_seconds (default 60 s for the frame
# decoder, a third of it for the other targets); FUZZ_SECONDS in the environment
# overrides every target.

ran=()
if step build-release configure "$build" --buildtype=release -Dwerror=true &&
    step ninja-release ninja -C "$build" -j "$jobs"; then
    ran+=("$build")
fi
if step build-asan configure "$asan" -Db_sanitize=address,undefined -Db_lundef=false \
    -Ddebug_checks=true &&
    step ninja-asan ninja -C "$asan" -j "$jobs"; then
    ran+=("$asan")
fi
rm -rf "$fuzz"
if step build-fuzz env CC=clang meson setup "$fuzz" -Dfuzz=true -Dtests=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false &&
    step ninja-fuzz ninja -C "$fuzz" -j "$jobs"; then
    ran+=("$fuzz")
fi

run_suites() { # dir, label, suites...
    local dir=$1 label=$2
    shift 2
    local args=()
    for s in "$@"; do args+=(--suite "$s"); done
    echo "== tests: $label ($*)"
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --no-rebuild --print-errorlogs "${args[@]}" \
        --num-processes 1 >"$logdir/test-$label.log" 2>&1
    grep -E '^ *[0-9]+/[0-9]+ ' "$logdir/test-$label.log"
    if grep -qE '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)' "$logdir/test-$label.log"; then
        echo "ordo: failures in $label; full log: $logdir/test-$label.log"
        sed -n '/Summary of Failures/,$p;/stdout:/,/^-------/p' "$logdir/test-$label.log" |
            tail -n 200
    fi
}

# Release build: every suite. ASan+UBSan: unit, sim and the fuzz corpora. The clang
# fuzz build: the bounded libFuzzer runs (suite fuzzrun).
for d in "${ran[@]}"; do
    case "$d" in
    "$build") run_suites "$d" release lint unit sim fuzz integration ;;
    "$asan") run_suites "$d" asan unit sim fuzz ;;
    "$fuzz") run_suites "$d" fuzz fuzzrun ;;
    esac
done

# Totals from meson's JSON test logs (one object per test and line).
# The totals line must stay the last line printed: the logs are removed first on success.
totals=$(python3 - "$failed_setup" "${ran[@]}" <<'PY'
import json, os, sys
failed_setup = int(sys.argv[1])
p = f = s = 0
for d in sys.argv[2:]:
    path = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        continue
    for line in open(path):
        try:
            r = json.loads(line)["result"]
        except (ValueError, KeyError):
            continue
        if r == "OK" or r == "EXPECTEDFAIL":
            p += 1
        elif r == "SKIP":
            s += 1
        else:
            f += 1
f += failed_setup
print(f"{p} passed, {f} failed, {s} skipped")
sys.exit(1 if f or p == 0 else 0)
PY
)
rc=$?
if [ "$rc" = 0 ]; then
    rm -rf "$logdir"
else
    echo "ordo: logs kept in $logdir"
fi
echo "$totals"
exit "$rc"
