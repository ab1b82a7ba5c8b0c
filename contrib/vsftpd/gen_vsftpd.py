#!/usr/bin/env python3
"""Generate a stock vsftpd setup that serves the cosftpd mounts of a cosftpd config.

    contrib/vsftpd/gen_vsftpd.py conf/vsftpd.conf OUTDIR [--listen-port 21] [--pam-service vsftpd-cosftpd]

Writes into OUTDIR:
  vsftpd.conf      - virtual users (guest mode), each chrooted to its account's home_dir (the cosftpd mount)
  users/<name>     - per-user settings: local_root, and write commands only for accounts with W
  passwd           - user:hash lines for pam_pwdfile (SHA-512 crypt; plaintext passwords are hashed here)
  pam.d/<service>  - the PAM service to copy to /etc/pam.d/

The permission policy itself stays in cosftpd: the mount of an R account is read-only and a delete with
delete_enable = false fails there with EPERM, whatever vsftpd allows. The per-user settings only keep vsftpd from
offering commands that would fail anyway. The kernel checks vsftpd's guest user against the mounts' owner and mode,
so the mounts must belong to it: mount_uid / mount_gid in [OPTIONAL] (a warning says so when they do not).
"""

import argparse
import configparser
import os
import pwd
import re
import subprocess
import sys


def config_value(value):
    # As cosftpd reads it: a value in double quotes is taken as written between them; otherwise a # or ; after
    # whitespace starts a comment (the original's example file puts "# comments" after values).
    quoted = re.match(r'\s*"([^"]*)"', value)
    if quoted:
        return quoted.group(1)
    return re.split(r"\s[#;]", value, maxsplit=1)[0].strip()


def crypt_sha512(password):
    if password.startswith(("$6$", "$5$", "$1$", "$2")):
        return password
    if password.startswith("$argon2"):
        sys.exit("argon2 hashes cannot be used by pam_pwdfile; give this account a $6$ hash or plaintext")
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("outdir")
    ap.add_argument("--listen-port", type=int, default=21)
    ap.add_argument("--listen-address", default=None)
    ap.add_argument("--pam-service", default="vsftpd-cosftpd")
    ap.add_argument("--guest-user", default="ftp", help="system user vsftpd maps virtual users to")
    args = ap.parse_args()

    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    # utf-8-sig: a config saved by a Windows editor starts with a byte-order mark, which cosftpd accepts.
    with open(args.config, encoding="utf-8-sig") as f:
        parser.read_file(f)
    get = lambda section, key, default="": config_value(parser.get(section, key, fallback=default))

    network = "NETWORK"
    passive = get(network, "passive_port", "60000,65535").split(",")
    masquerade = get(network, "masquerade_address")

    # The same sections cosftpd takes as accounts: [COS_ACCOUNT] and [COS_ACCOUNT_<anything>].
    accounts = [s for s in parser.sections() if s == "COS_ACCOUNT" or s.startswith("COS_ACCOUNT_")]
    if not accounts:
        sys.exit(f"{args.config}: no [COS_ACCOUNT_*] sections")

    if get("OPTIONAL", "allow_other", "true").lower() in ("false", "no", "off", "0"):
        print(f"warning: {args.config} sets allow_other = false: vsftpd's guest user ({args.guest_user}) cannot "
              "enter the mounts; remove that line or set it to true", file=sys.stderr)

    # The kernel checks each access of the guest user against the mounts' owner and mode (default_permissions):
    # unless the mounts are its own, it may read only what file_mode/dir_mode give everyone, and write nothing.
    try:
        guest = pwd.getpwnam(args.guest_user)
    except KeyError:
        sys.exit(f"--guest-user {args.guest_user}: no such user")
    if get("OPTIONAL", "mount_uid") != str(guest.pw_uid):
        print(f"warning: the mounts of {args.config} are not owned by vsftpd's guest user ({args.guest_user}), so "
              f"it cannot upload, create or delete through them: set mount_uid = {guest.pw_uid} and "
              f"mount_gid = {guest.pw_gid} in [OPTIONAL]", file=sys.stderr)

    os.makedirs(os.path.join(args.outdir, "users"), exist_ok=True)
    os.makedirs(os.path.join(args.outdir, "pam.d"), exist_ok=True)
    outdir = os.path.abspath(args.outdir)

    lines = []
    for section in accounts:
        user = get(section, "ftp_login_user_name")
        home = os.path.abspath(get(section, "home_dir"))
        authority = get(section, "authority", "RW").upper()
        writable = "W" in authority
        lines.append(f"{user}:{crypt_sha512(get(section, 'ftp_login_user_password'))}")
        with open(os.path.join(outdir, "users", user), "w", encoding="utf-8") as f:
            f.write(f"local_root={home}\n")
            yes = "YES" if writable else "NO"
            f.write(f"write_enable={yes}\n")
            f.write(f"anon_upload_enable={yes}\nanon_mkdir_write_enable={yes}\nanon_other_write_enable={yes}\n")
            f.write(f"download_enable={'YES' if 'R' in authority else 'NO'}\n")
            f.write(f"dirlist_enable={'YES' if 'R' in authority else 'NO'}\n")

    with open(os.path.join(outdir, "passwd"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(os.path.join(outdir, "passwd"), 0o600)

    with open(os.path.join(outdir, "pam.d", args.pam_service), "w", encoding="utf-8") as f:
        f.write(f"auth required pam_pwdfile.so pwdfile={outdir}/passwd\naccount required pam_permit.so\n")

    conf = [
        "# Generated by contrib/vsftpd/gen_vsftpd.py from " + os.path.abspath(args.config),
        "listen=YES",
        "listen_ipv6=NO",
        f"listen_port={args.listen_port}",
        *( [f"listen_address={args.listen_address}"] if args.listen_address else [] ),
        "background=NO",
        "anonymous_enable=NO",
        "local_enable=YES",
        "guest_enable=YES",
        f"guest_username={args.guest_user}",
        "virtual_use_local_privs=NO",
        f"pam_service_name={args.pam_service}",
        f"user_config_dir={outdir}/users",
        "chroot_local_user=YES",
        "allow_writeable_chroot=YES",
        "anon_umask=022",
        # Guests may only download world-readable files unless this is NO; the kernel already checks the guest user
        # (the mounts' owner) against file_mode, and cosftpd's policy decides what the account may read, so vsftpd
        # must not add a rule of its own (a file_mode of 0640 would make every file unreadable to it).
        "anon_world_readable_only=NO",
        "pasv_enable=YES",
        f"pasv_min_port={passive[0].strip()}",
        f"pasv_max_port={passive[-1].strip()}",
        *( [f"pasv_address={masquerade}", "pasv_addr_resolve=YES"] if masquerade else [] ),
        "utf8_filesystem=YES",
        "seccomp_sandbox=NO",
        "secure_chroot_dir=/var/run/vsftpd/empty",
        "xferlog_enable=YES",
        "log_ftp_protocol=NO",
    ]
    with open(os.path.join(outdir, "vsftpd.conf"), "w", encoding="utf-8") as f:
        f.write("\n".join(conf) + "\n")
    print(f"wrote {outdir}/vsftpd.conf, users/, passwd and pam.d/{args.pam_service}")


if __name__ == "__main__":
    main()
