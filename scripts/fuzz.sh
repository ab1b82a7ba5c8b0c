#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo fuzz, nightly toolchain) of what clients and operators hand
# cosftpd: FTP control lines, paths typed in a directory, config files. Not part of the test command: run it after
# touching a parser, and add any crash it finds as a unit test.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh ftp_command
#
# Installs cargo-fuzz (crates.io) and the nightly toolchain when missing. Corpora grow in fuzz/corpus/<target>
# (seeded from the example config and a few control lines; not committed), crashes land in fuzz/artifacts/<target>.
# Prints, per target, the executions run and whether anything failed; exits non-zero if a target failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ftp_command key_resolve config)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

seed() {
    local dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    case "$1" in
        ftp_command)
            local n=0
            for line in "USER anonymous" "PASS x" "EPRT |2|::1|2121|" "PORT 127,0,0,1,4,1" "LIST -la /a b" \
                "OPTS HASH SHA-1" "RANG 0 49" "XCRC f 1 2" "MLST a" "SITE HELP" "REST 100" "TYPE L 8"; do
                printf '%s' "$line" >"$dir/seed-$n"
                n=$((n + 1))
            done
            ;;
        key_resolve) printf '/a/b\0../c/./d' >"$dir/seed-0" ;;
        config) cp conf/vsftpd.conf.example "$dir/seed-0" ;;
    esac
}

status=0
for target in "${targets[@]}"; do
    seed "$target"
    log="fuzz/$target.log"
    echo "==> $target: ${seconds} s"
    if (cd fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048) >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log and fuzz/artifacts/$target)"
        status=1
    fi
    execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    echo "    $target: ${execs:-0} executions, $result"
done
exit "$status"
