#!/usr/bin/env bash
# Builds the release artifacts of cosftpd and checks them:
#
#   target/package/cosftpd-<version>-x86_64-linux-glibc2.17.tar.gz   binary, unit, example config, docs, LICENSE
#   target/package/cosftpd_<version>-1_amd64.deb                      the same, installed (see docs/OPERATIONS.md)
#
# Steps (each timed in the summary at the end):
# 1. tools, when missing: cargo-zigbuild and cargo-deb from crates.io (`cargo install --locked`, pinned, into
#    target/package/tools), and zig from PyPI (`ziglang`, pinned, in a venv at target/package/venv);
# 2. one build for both artifacts: `cargo zigbuild --profile dist --target x86_64-unknown-linux-gnu.2.17`, which
#    links against glibc 2.17's symbol versions (CentOS 7); the dist profile strips the binary;
# 3. checks on that binary: no GLIBC_ symbol version above 2.17 (objdump -T), `--version` names this commit,
#    `check-config` accepts conf/vsftpd.conf.example (with its placeholder home_dirs pointed at temporary
#    directories; check-config never contacts a store);
# 4. the tarball;
# 5. the .deb: `cargo deb --no-build` around the same binary; its file list is checked;
# 6. the .deb on clean Debians: for each suite, a minimal Debian (debootstrap, cached in
#    target/package/debian-<suite>), copied afresh, `apt-get install ./cosftpd_….deb` in it (fuse3 comes from the
#    Debian archive), the files checked where the package puts them, the binary run (`--version`, `passwd`,
#    `check-config` finding /etc/cosftpd/vsftpd.conf by itself), then `dpkg --purge` leaving nothing behind.
#    Debian 11 (glibc 2.31) also shows the binary running on a glibc older than the build machine's. Needs root
#    (chroot); skipped with a message otherwise, unless COSFTPD_PACKAGE_REQUIRE_INSTALL=1.
#
# Slow (a full release build: ~10 minutes on 2 cores, plus a first debootstrap): not part of scripts/test.sh.
#
# Environment:
#   CARGO_BUILD_JOBS                    build parallelism (default 2)
#   COSFTPD_DEBIAN_SUITES               Debian releases for the installation check (default "bookworm bullseye")
#   COSFTPD_DEBIAN_MIRROR               its mirror (default http://deb.debian.org/debian)
#   COSFTPD_PACKAGE_REQUIRE_INSTALL=1   fail, rather than skip, when the installation check cannot run
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

CARGO_DEB_VERSION=3.8.0
CARGO_ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.14.1
GLIBC_MAX=2.17
RUST_TARGET=x86_64-unknown-linux-gnu
PROFILE=dist
SUITES="${COSFTPD_DEBIAN_SUITES:-bookworm bullseye}"
MIRROR="${COSFTPD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

OUT="$repo/target/package"
TOOLS="$OUT/tools"
VENV="$OUT/venv"
mkdir -p "$OUT"

version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
[ -n "$version" ] || die "no version in Cargo.toml"
bin="$repo/target/$RUST_TARGET/$PROFILE/cosftpd"
tar_name="cosftpd-$version-x86_64-linux-glibc$GLIBC_MAX"
deb="$OUT/cosftpd_${version}-1_amd64.deb"

# Step timings and findings for the summary.
declare -a summary=()
step_start=$SECONDS
step() {
    local now=$SECONDS
    summary+=("$(printf '%-34s %4ds' "$1" $((now - step_start)))")
    step_start=$now
}
note() { summary+=("$*"); }

# -------------------------------------------------------------------------------------------------------------
# 1. Tools
# -------------------------------------------------------------------------------------------------------------
export PATH="$TOOLS/bin:$VENV/bin:$PATH"

cargo_tool() { # crate version command
    if command -v "$3" >/dev/null 2>&1 && "$3" --version 2>/dev/null | grep -qF "$2"; then
        return 0
    fi
    say "installing $1 $2 from crates.io into $TOOLS"
    cargo install --locked --quiet --root "$TOOLS" "$1@$2"
}
cargo_tool cargo-zigbuild "$CARGO_ZIGBUILD_VERSION" cargo-zigbuild
cargo_tool cargo-deb "$CARGO_DEB_VERSION" cargo-deb

if ! "$VENV/bin/python" -m ziglang version 2>/dev/null | grep -qxF "$ZIGLANG_VERSION"; then
    say "installing ziglang $ZIGLANG_VERSION from PyPI into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
fi
# cargo-zigbuild runs zig through this interpreter's ziglang module when no `zig` is on PATH.
export CARGO_ZIGBUILD_PYTHON_PATH="$VENV/bin/python"
for t in objdump readelf dpkg-deb; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing (Debian: apt-get install binutils dpkg)"
done
step "tools"

# -------------------------------------------------------------------------------------------------------------
# 2. The build
# -------------------------------------------------------------------------------------------------------------
say "cargo zigbuild --profile $PROFILE --target $RUST_TARGET.$GLIBC_MAX (CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS)"
cargo zigbuild --locked --profile "$PROFILE" --target "$RUST_TARGET.$GLIBC_MAX" --bin cosftpd
[ -x "$bin" ] || die "$bin was not built"
step "build (cargo zigbuild)"

# -------------------------------------------------------------------------------------------------------------
# 3. The binary
# -------------------------------------------------------------------------------------------------------------
glibc_versions="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV)"
glibc_found="$(tail -n1 <<<"$glibc_versions")"
[ -n "$glibc_found" ] || die "objdump -T found no GLIBC_ symbol versions in $bin"
if [ "$(printf '%s\n%s\n' "$glibc_found" "$GLIBC_MAX" | sort -V | tail -n1)" != "$GLIBC_MAX" ]; then
    objdump -T "$bin" | grep -E "GLIBC_($(sed 's/\./\\./g' <<<"$glibc_found"))" >&2 || true
    die "the binary needs GLIBC_$glibc_found, more than $GLIBC_MAX"
fi
if readelf -S "$bin" | grep -qF '.symtab'; then
    die "$bin is not stripped (it has a .symtab)"
fi
needed="$(objdump -p "$bin" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')"

version_line="$("$bin" --version)"
commit="$(git rev-parse --short HEAD 2>/dev/null || true)"
case "$version_line" in
    "cosftpd $version (git $commit)" | "cosftpd $version (git $commit-dirty)") ;;
    *) die "--version says '$version_line', expected cosftpd $version (git $commit[-dirty])" ;;
esac

scratch="$(mktemp -d)"
cleanup_scratch() { rm -rf "$scratch"; }
trap cleanup_scratch EXIT
mkdir -p "$scratch/home/user0" "$scratch/home/user1"
sed "s#^home_dir\( *\)= */home/#home_dir\1= $scratch/home/#" conf/vsftpd.conf.example >"$scratch/vsftpd.conf"
if ! check_output="$("$bin" check-config -c "$scratch/vsftpd.conf" 2>&1)"; then
    printf '%s\n' "$check_output" >&2
    die "check-config refused conf/vsftpd.conf.example"
fi
step "checks on the binary"
note "binary: $(stat -c %s "$bin") bytes ($(du -h "$bin" | cut -f1)), stripped; $version_line"
note "glibc symbol versions needed: $(tr '\n' ' ' <<<"$glibc_versions")(max GLIBC_$glibc_found <= $GLIBC_MAX)"
note "shared libraries: $needed"

# -------------------------------------------------------------------------------------------------------------
# 4. The tarball
# -------------------------------------------------------------------------------------------------------------
stage="$scratch/$tar_name"
mkdir -p "$stage"
install -m 0755 "$bin" "$stage/cosftpd"
install -m 0644 contrib/systemd/cosftpd.service conf/vsftpd.conf.example README.md CHANGELOG.md \
    docs/OPERATIONS.md LICENSE "$stage/"
# Reproducible: fixed owner, order and times (the commit's).
mtime="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$scratch" -czf "$OUT/$tar_name.tar.gz" \
    "$tar_name"
tar_list="$(tar -tzf "$OUT/$tar_name.tar.gz")"
grep -qx "$tar_name/cosftpd" <<<"$tar_list" || die "the tarball lacks the binary"
step "tarball"
note "tarball: $OUT/$tar_name.tar.gz, $(stat -c %s "$OUT/$tar_name.tar.gz") bytes ($(du -h "$OUT/$tar_name.tar.gz" | cut -f1))"

# -------------------------------------------------------------------------------------------------------------
# 5. The .deb
# -------------------------------------------------------------------------------------------------------------
rm -f "$deb"
cargo deb --no-build --target "$RUST_TARGET" --profile "$PROFILE" --output "$deb"
[ -f "$deb" ] || die "cargo deb made no $deb"
contents="$(dpkg-deb -c "$deb" | awk '{print $1, $6}')"
for expected in \
    "-rwxr-xr-x ./usr/bin/cosftpd" \
    "-rw------- ./etc/cosftpd/vsftpd.conf" \
    "-rw-r--r-- ./usr/lib/systemd/system/cosftpd.service" \
    "-rw-r--r-- ./usr/share/doc/cosftpd/OPERATIONS.md" \
    "-rw-r--r-- ./usr/share/doc/cosftpd/copyright"; do
    grep -qxF -- "$expected" <<<"$contents" || die "the .deb lacks '$expected':"$'\n'"$contents"
done
depends="$(dpkg-deb -f "$deb" Depends)"
for d in "libc6 (>= $GLIBC_MAX)" fuse3; do
    grep -qF "$d" <<<"$depends" || die "the .deb does not depend on $d (Depends: $depends)"
done
dpkg-deb -e "$deb" "$scratch/control"
grep -qx /etc/cosftpd/vsftpd.conf "$scratch/control/conffiles" || die "/etc/cosftpd/vsftpd.conf is no conffile"
grep -q 'daemon-reload' "$scratch/control/postinst" || die "the .deb's postinst does not reload systemd"
step ".deb (cargo deb --no-build)"
note ".deb: $deb, $(stat -c %s "$deb") bytes ($(du -h "$deb" | cut -f1)); Depends: $depends"

# -------------------------------------------------------------------------------------------------------------
# 6. The .deb on a clean Debian
# -------------------------------------------------------------------------------------------------------------
install_check_unavailable() {
    if [ "${COSFTPD_PACKAGE_REQUIRE_INSTALL:-0}" = "1" ]; then
        die "installation check: $1"
    fi
    say "skipping the installation check: $1"
    note "installation check: SKIPPED ($1)"
}

install_check() { # suite
    local suite="$1"
    if [ "$(id -u)" -ne 0 ]; then
        install_check_unavailable "needs root (chroot)"
        return 0
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; } ||
            { install_check_unavailable "debootstrap cannot be installed"; return 0; }
    fi
    local base="$OUT/debian-$suite"
    if ! [ -f "$base/.cosftpd-complete" ]; then
        say "debootstrap --variant=minbase $suite into $base (once; cached)"
        rm -rf "$base"
        debootstrap --variant=minbase "$suite" "$base" "$MIRROR" >"$OUT/debootstrap-$suite.log" 2>&1 ||
            { tail -n 20 "$OUT/debootstrap-$suite.log" >&2; die "debootstrap failed (log: $OUT/debootstrap-$suite.log)"; }
        cp /etc/resolv.conf "$base/etc/resolv.conf"
        chroot "$base" apt-get update -qq
        touch "$base/.cosftpd-complete"
    fi
    local root="$scratch/debian-$suite"
    cp -a "$base" "$root"
    # shellcheck disable=SC2064 # expand now: the paths are fixed
    trap "umount '$root/proc' 2>/dev/null || true; cleanup_scratch" EXIT
    mount -t proc proc "$root/proc" || say "no /proc in the root (mount refused); going on without"
    cp "$deb" "$root/tmp/"
    local debname
    debname="$(basename "$deb")"
    say "apt-get install ./$debname in a fresh $suite root"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$debname" \
        >"$OUT/install-$suite.log" 2>&1 || { cat "$OUT/install-$suite.log" >&2; die "apt-get install of the .deb failed"; }
    local status
    status="$(chroot "$root" dpkg-query -W -f='${Package} ${Status}\n' cosftpd fuse3)"
    if grep -v ' install ok installed$' <<<"$status"; then
        die "not installed in the root: $status"
    fi
    local f
    for f in /usr/bin/cosftpd /etc/cosftpd/vsftpd.conf /usr/lib/systemd/system/cosftpd.service \
        /usr/share/doc/cosftpd/README.md /usr/share/doc/cosftpd/OPERATIONS.md /usr/share/doc/cosftpd/copyright; do
        [ -f "$root$f" ] || die "$f was not installed"
    done
    [ "$(stat -c %a "$root/etc/cosftpd/vsftpd.conf")" = 600 ] || die "/etc/cosftpd/vsftpd.conf is not mode 0600"
    [ "$(chroot "$root" cosftpd --version)" = "$version_line" ] || die "the installed cosftpd --version differs"
    local hash
    hash="$(printf 'pw\n' | chroot "$root" cosftpd passwd)"
    case "$hash" in '$argon2id$'*) ;; *) die "cosftpd passwd in the root printed '$hash'" ;; esac
    # Without -c the installed config is found; its placeholder home_dirs made real, it passes.
    mkdir -p "$root/home/user0" "$root/home/user1"
    local out
    out="$(chroot "$root" env -u COSFTPD_CONFIG sh -c 'cd / && cosftpd check-config' 2>&1)" ||
        { printf '%s\n' "$out" >&2; die "check-config in the root failed"; }
    [ "$(head -n1 <<<"$out")" = "/etc/cosftpd/vsftpd.conf: OK" ] || die "check-config did not read /etc/cosftpd/vsftpd.conf: $out"
    # Purged, it leaves nothing of its own behind (the config included).
    chroot "$root" dpkg --purge cosftpd >>"$OUT/install-$suite.log" 2>&1 || die "dpkg --purge cosftpd failed"
    for f in /usr/bin/cosftpd /etc/cosftpd/vsftpd.conf /usr/lib/systemd/system/cosftpd.service /usr/share/doc/cosftpd; do
        [ ! -e "$root$f" ] || die "$f is left after dpkg --purge"
    done
    umount "$root/proc" 2>/dev/null || true
    rm -rf "$root"
    note "installation check on Debian $suite (glibc $(chroot "$base" dpkg-query -W -f='${Version}' libc6)): apt-get install (fuse3 pulled in), files in place, config 0600, --version, passwd, check-config finds /etc/cosftpd/vsftpd.conf, dpkg --purge leaves nothing"
}
for suite in $SUITES; do
    install_check "$suite"
    step "installation check ($suite)"
done

# -------------------------------------------------------------------------------------------------------------
printf '\n== cosftpd %s packaged in %d s\n' "$version" "$SECONDS"
printf '   %s\n' "${summary[@]}"
