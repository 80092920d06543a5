# Sourced by Fuzz/run and Fuzz/long: builds the fuzz package (release, libFuzzer + AddressSanitizer)
# into Fuzz/.build and sets $bin to its products folder.
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Swift's own crash backtracer would take over (and wait) on a trap: leave crashes to libFuzzer/ASan.
export SWIFT_BACKTRACE=enable=no
all_targets=(FuzzRecords FuzzHandshakeMessages FuzzExtensions FuzzX509 FuzzServer13 FuzzClient13 FuzzServer12 FuzzClient12 FuzzSessions FuzzP384)
build_flags=(-c release --scratch-path "$fuzz_dir/.build" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)

max_len_for() {
    case $1 in
        FuzzExtensions|FuzzSessions) echo 8192 ;;
        FuzzP384) echo 1024 ;;
        FuzzX509) echo 16384 ;;
        FuzzHandshakeMessages) echo 32768 ;;
        *) echo 65536 ;;
    esac
}

check_targets() {
    local t ok
    for t in "$@"; do
        ok=
        for a in "${all_targets[@]}"; do [ "$t" = "$a" ] && ok=1; done
        if [ -z "$ok" ]; then echo "unknown target $t (targets: ${all_targets[*]})" >&2; exit 64; fi
    done
}

build_fuzzers() {
    command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
    local log="$fuzz_dir/.build/fuzz-build.log" start=$SECONDS
    mkdir -p "$fuzz_dir/.build"
    echo "== building the fuzz package (release, -sanitize=fuzzer,address); log: $log"
    # SwiftPM's incremental build once kept a fuzz module compiled against an older layout of a
    # Q-SSL type (a struct that had gained a class reference), and the target crashed at once.
    # When Q-SSL's sources changed since the last fuzz build, the fuzz modules are recompiled.
    local stamp="$fuzz_dir/.build/qssl-sources.stamp" sources
    sources=$(cd "$fuzz_dir/.." && { git ls-files -s Sources && git diff HEAD -- Sources; } 2>/dev/null | cksum) || sources=unknown
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sources" ]; then
        touch "$fuzz_dir"/Sources/*/*.swift
    fi
    # ld.gold's "Cannot export local symbol" warnings are harmless and many.
    if ! (cd "$fuzz_dir" && swift build "${build_flags[@]}") >"$log" 2>&1; then
        grep -v "Cannot export local symbol" "$log" | tail -40 >&2
        echo "FAIL: the fuzz package does not build" >&2
        exit 1
    fi
    echo "$sources" >"$stamp"
    bin=$(cd "$fuzz_dir" && swift build "${build_flags[@]}" --show-bin-path)
    echo "== built in $((SECONDS - start)) s: $bin"
}

# Prints "exec/s, cov, ft, corp" from a libFuzzer log.
summarize() {
    local log=$1 last execs
    last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1 || true)
    execs=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
    printf 'runs %s  exec/s %s  cov %s  ft %s  corp %s\n' \
        "$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')" \
        "${execs:-?}" \
        "$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")" \
        "$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")" \
        "$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")"
}
