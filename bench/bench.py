#!/usr/bin/env python3
"""cosftpd benchmarks: cosftpd (FTP and mount) against a direct OpenDAL client and against the tools users would
pick instead (rclone serve ftp, rclone mount, s3fs, vsftpd over s3fs, vsftpd over the cosftpd mount), all on one
local S3 server (`rclone serve s3` on loopback). Run through bench/run.sh, which installs and builds what this needs.

Every number is a median of BENCH_RUNS runs, and every tool is quoted as a ratio to the direct client measured in
the same run of this script, because the machine is shared and absolute numbers are noisy. Runs are interleaved
(run 1 of every tool, then run 2 of every tool, ...), and every server or mount is started fresh for each run, so
no run is served from a cache filled by the one before.

Environment (defaults in brackets):
  BENCH_SIZE_MB [1024]        the large file (upload and download)
  BENCH_RUNS [3]              runs per measurement (the median is reported)
  BENCH_SMALL_FILES [1000]    small files for lftp mirror, BENCH_SMALL_KB [4] each
  BENCH_LIST_OBJECTS [10000]  objects in the listed directory
  BENCH_SESSIONS [100]        concurrent FTP sessions; each uploads one file of each of BENCH_SESSION_SIZES
                              [4096,16384,65536,262144,1048576] bytes, then downloads them
  BENCH_MEM_SIZES_MB [1024,4096]  single uploads whose cosftpd peak RSS is measured
  BENCH_MEM_CONC [16] x BENCH_MEM_CONC_MB [256]  concurrent uploads for the memory-budget case
  BENCH_MEM_BUDGET [256M]     memory_budget of the memory cases (the other cases use the default, 512M)
  BENCH_STORE_DIR [/dev/shm/cosftpd-bench-store]  the directory rclone serves as S3 (tmpfs by default)
  BENCH_WORK_DIR [/dev/shm/cosftpd-bench-work]    source files, mount points, configs
  BENCH_SECTIONS [big,small,list,sessions,many,fs,memory,cluster]  which sections to run
  BENCH_CLUSTER_OPS [300]     sequential logins, and sequential 1-byte STORs, per variant of the Redis-cost case
  BENCH_TOOLS [all]           comma list of tool names to run (direct is always run)
  BENCH_OUT [bench/results/latest]  writes <out>.json and <out>.md
  BENCH_COSFTPD_LOG_LEVEL [warn]  log_level of the cosftpd configs (debug shows read-window resets)
  BENCH_COSFTPD [target/release/cosftpd]  the cosftpd binary (e.g. a copy built from an older commit, for a
                              before/after run)
  BENCH_READ_AHEAD_KB [128,1024,4096]  extra runs of the mount download with the mount's read_ahead_kb set to each
                              value after its first request (the kernel's default is 128; cosftpd raises its own
                              mount to 1024 when it runs as root); empty to skip
  BENCH_FS_MB [300]           the file of the fs section (cosftpd's fs backend vs vsftpd and pyftpdlib serving
                              the same local directory)
  BENCH_FS_DIR [<work dir>/fs-root]  that directory (tmpfs by default; a disk directory measures the disk too)
  BENCH_MANY_SESSIONS [1000]  sessions of the many-sessions section: all log in (BENCH_MANY_RAMP_MS [5] apart:
                              vsftpd, which forks and runs PAM for each login, times out some of 1,000 logins
                              1 ms apart), then all at once
                              upload one file of each of BENCH_MANY_SIZES [4096,65536] bytes and download them back
  BENCH_MANY_TOOLS [cosftpd FTP,vsftpd + tmpfs dir,rclone serve ftp]  FTP servers of that section
  BENCH_PIN [off]             "on": the store runs on CPU 0 and everything else (the tool under test, the clients,
                              this script) on the other CPUs, as when the store is another machine; by default all
                              share every CPU, and on 2 cores the store takes half of them
  BENCH_MISSING_NAMES [500000]  the memory section asks SIZE of this many distinct names that do not exist
                              (cosftpd over the fs backend, 8 sessions, commands pipelined) and reports RSS after
"""

import asyncio
import contextlib
import ftplib
import io
import json
import os
import platform
import pwd
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COSFTPD = os.environ.get("BENCH_COSFTPD", os.path.join(REPO, "target/release/cosftpd"))
DIRECT = os.path.join(REPO, "target/release/examples/direct_s3")
RCLONE = os.path.join(REPO, "bench/.venv/bin/rclone")
VENV_PYTHON = os.path.join(REPO, "bench/.venv/bin/python")
GEN_VSFTPD = os.path.join(REPO, "contrib/vsftpd/gen_vsftpd.py")

AK, SK, BUCKET, REGION = "BENCHACCESSKEY", "BENCHSECRETKEY", "bench", "us-east-1"
USER, PASSWORD = "bench", "benchpass"
PAM_SERVICE = "cosftpd-bench-vsftpd"
MB = 1e6
MIB = 1024 * 1024


def env_int(name, default):
    return int(os.environ.get(name, default))


SIZE_MB = env_int("BENCH_SIZE_MB", 1024)
RUNS = env_int("BENCH_RUNS", 3)
SMALL_FILES = env_int("BENCH_SMALL_FILES", 1000)
SMALL_KB = env_int("BENCH_SMALL_KB", 4)
LIST_OBJECTS = env_int("BENCH_LIST_OBJECTS", 10000)
SESSIONS = env_int("BENCH_SESSIONS", 100)
SESSION_SIZES = [int(v) for v in os.environ.get("BENCH_SESSION_SIZES", "4096,16384,65536,262144,1048576").split(",")]
MEM_SIZES_MB = [int(v) for v in os.environ.get("BENCH_MEM_SIZES_MB", "1024,4096").split(",") if v]
MEM_CONC = env_int("BENCH_MEM_CONC", 16)
MEM_CONC_MB = env_int("BENCH_MEM_CONC_MB", 256)
MEM_BUDGET = os.environ.get("BENCH_MEM_BUDGET", "256M")
STORE_DIR = os.environ.get("BENCH_STORE_DIR", "/dev/shm/cosftpd-bench-store")
WORK_DIR = os.environ.get("BENCH_WORK_DIR", "/dev/shm/cosftpd-bench-work")
SECTIONS = os.environ.get("BENCH_SECTIONS", "big,small,list,sessions,many,fs,memory,cluster").split(",")
READ_AHEAD_KB = [int(v) for v in os.environ.get("BENCH_READ_AHEAD_KB", "128,1024,4096").split(",") if v]
FS_MB = env_int("BENCH_FS_MB", 300)
FS_DIR = os.environ.get("BENCH_FS_DIR", "")
MANY_SESSIONS = env_int("BENCH_MANY_SESSIONS", 1000)
MANY_RAMP = env_int("BENCH_MANY_RAMP_MS", 5) / 1000
MANY_SIZES = [int(v) for v in os.environ.get("BENCH_MANY_SIZES", "4096,65536").split(",")]
MANY_TOOLS = os.environ.get("BENCH_MANY_TOOLS", "cosftpd FTP,vsftpd + tmpfs dir,rclone serve ftp")
MISSING_NAMES = env_int("BENCH_MISSING_NAMES", 500000)
CLUSTER_OPS = env_int("BENCH_CLUSTER_OPS", 300)
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
TOOLS = os.environ.get("BENCH_TOOLS", "all")
PIN = os.environ.get("BENCH_PIN", "off") == "on"
STORE_CPUS = {0}
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench/results/latest"))

CLK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# processes, ports, mounts; everything started here is stopped by cleanup()
# ---------------------------------------------------------------------------------------------------------------

STARTED = []  # Popen objects, each the leader of its own process group
MOUNTS = set()
CREATED_FILES = []


def spawn(args, log_name, env=None):
    out = open(os.path.join(WORK_DIR, "logs", log_name + ".log"), "ab")
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    out.close()
    STARTED.append(p)
    return p


def stop(p, timeout=15):
    if p is None or p.poll() is not None:
        if p in STARTED:
            STARTED.remove(p)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)
    if p in STARTED:
        STARTED.remove(p)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def wait_mounted(path, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if is_mounted(path):
            MOUNTS.add(path)
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"mount of {path} failed: process exited {proc.returncode} (see {WORK_DIR}/logs)")
        time.sleep(0.05)
    raise RuntimeError(f"{path} not mounted after {timeout}s")


def unmount(path):
    if is_mounted(path):
        r = subprocess.run(["fusermount3", "-u", path], capture_output=True)
        if r.returncode != 0 and is_mounted(path):
            subprocess.run(["umount", "-l", path], capture_output=True)
    MOUNTS.discard(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited {proc.returncode} (see {WORK_DIR}/logs)")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def cleanup():
    for path in list(MOUNTS):
        unmount(path)
    for p in list(STARTED):
        stop(p, timeout=5)
    for path in list(MOUNTS):
        unmount(path)
    for f in CREATED_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(f)
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    shutil.rmtree(STORE_DIR, ignore_errors=True)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------------------------
# accounting: CPU of processes (utime+stime+cutime+cstime from /proc/<pid>/stat) and peak RSS (VmHWM)
# ---------------------------------------------------------------------------------------------------------------

def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is state (field 3); utime is field 14 -> index 11
        return sum(int(v) for v in fields[11:15]) / CLK
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return None


def vm_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return None


def client_cpu():
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return c.ru_utime + c.ru_stime + time.process_time()


class Meter:
    """Wall time and CPU seconds of the store, of the tool's processes and of the client, over one measurement."""

    def __init__(self, store_pid, tool_pids):
        self.store_pid, self.tool_pids = store_pid, list(tool_pids)

    def __enter__(self):
        self.t0 = time.monotonic()
        self.s0 = proc_cpu(self.store_pid)
        self.p0 = sum(proc_cpu(p) for p in self.tool_pids)
        self.c0 = client_cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.store = proc_cpu(self.store_pid) - self.s0
        self.tool = sum(proc_cpu(p) for p in self.tool_pids) - self.p0
        self.client = client_cpu() - self.c0
        return False

    def record(self, **extra):
        return {"wall": self.wall, "store_cpu": self.store, "tool_cpu": self.tool, "client_cpu": self.client,
                **extra}


# ---------------------------------------------------------------------------------------------------------------
# the store and the direct client
# ---------------------------------------------------------------------------------------------------------------

class Store:
    def start(self):
        os.makedirs(os.path.join(STORE_DIR, BUCKET), exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # --etag-hash "": rclone would otherwise read the whole file to MD5 it on every GET and HEAD.
        pin = ["taskset", "-c", ",".join(map(str, sorted(STORE_CPUS)))] if PIN else []
        self.proc = spawn([*pin, RCLONE, "serve", "s3", STORE_DIR, "--addr", f"127.0.0.1:{self.port}",
                           "--auth-key", f"{AK},{SK}", "--etag-hash", "", "--log-level", "ERROR"], "store")
        wait_port(self.port, self.proc)
        self.pid = self.proc.pid

    def rclone_env(self):
        env = dict(os.environ)
        env.update({
            "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENDPOINT": self.endpoint, "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": AK,
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SK, "RCLONE_CONFIG_BENCH_REGION": REGION,
            "RCLONE_CONFIG": "/dev/null",
        })
        return env


STORE = Store()


def direct(*args, check=True):
    cmd = [DIRECT, "--endpoint", STORE.endpoint, "--bucket", BUCKET, "--region", REGION, "--ak", AK, "--sk", SK,
           *[str(a) for a in args]]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "0"})
    if check and r.returncode != 0:
        raise RuntimeError(f"direct_s3 {' '.join(map(str, args))}: {r.stderr.strip()[:500]}")
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return lines


def delete_prefix(prefix):
    direct("delete-prefix", prefix, check=False)


def make_dir(prefix, tool=None):
    """An implicit directory (rclone serve s3 turns a `dir/` marker into a zero-byte *file*, so no MKD here)."""
    local = getattr(tool, "local_root", None)
    if local:
        path = os.path.join(local, prefix.rstrip("/"))
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
        return
    direct("put-zero", prefix.rstrip("/") + "/.keep", 0)


def remove(prefix, tool=None):
    local = getattr(tool, "local_root", None)
    if local:
        path = os.path.join(local, prefix.rstrip("/"))
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)
        return
    delete_prefix(prefix)


# ---------------------------------------------------------------------------------------------------------------
# the tools
# ---------------------------------------------------------------------------------------------------------------

def cosftpd_conf(path, home, mount, ftp_port=None, passive=(53000, 53999), memory_budget=None, fs_root=None,
                 extra=(), listen="127.0.0.1", network=(), sections=()):
    if fs_root:
        storage = ["storage_type = fs", f"storage_root = {fs_root}"]
    else:
        storage = ["storage_type = s3", f"cos_endpoint = {STORE.endpoint}", f"cos_region = {REGION}",
                   f"cos_secretid = {AK}", f"cos_secretkey = {SK}", f"cos_bucket = {BUCKET}"]
    lines = [
        "[COS_ACCOUNT_0]", *storage, f"home_dir = {home}",
        f"ftp_login_user_name = {USER}", f"ftp_login_user_password = {PASSWORD}", "authority = RW",
        "delete_enable = true", "", "[NETWORK]", f"listen_address = {listen}",
        f"listen_port = {ftp_port or free_port()}", f"passive_port = {passive[0]},{passive[1]}", *network, "",
        "[FILE_OPTION]", "single_file_max_size = 200G", "", "[OPTIONAL]",
        "upload_thread_num = 8", f"max_connection_num = {max(1000, MANY_SESSIONS + 100)}",
        "max_connection_per_ip = 0",
        "max_list_file = 100000", f"log_level = {os.environ.get('BENCH_COSFTPD_LOG_LEVEL', 'warn')}",
        f"mount_enable = {'true' if mount else 'false'}",
        f"memory_budget = {memory_budget or '512M'}", *extra, *sections,
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Tool:
    name = ""
    kind = ""  # "ftp" or "mount"
    how = ""
    proc = None

    def pids(self):
        return [p.pid for p in self.procs() if p is not None]

    def procs(self):
        return [self.proc]

    def peak_rss(self):
        v = [vm_hwm_mib(p) for p in self.pids()]
        v = [x for x in v if x is not None]
        return sum(v) if v else None


class CosftpdFtp(Tool):
    name, kind, how = "cosftpd FTP", "ftp", "cosftpd serve (mount_enable = false)"

    def __init__(self, memory_budget=None, fs_root=None, passive=(53000, 53999), name=None):
        self.memory_budget, self.fs_root, self.passive = memory_budget, fs_root, passive
        if name:
            self.name = name

    def start(self):
        self.port = free_port()
        home = os.path.join(WORK_DIR, "home-ftp")
        os.makedirs(home, exist_ok=True)
        conf = os.path.join(WORK_DIR, "cosftpd-ftp.conf")
        cosftpd_conf(conf, home, mount=False, ftp_port=self.port, memory_budget=self.memory_budget,
                     fs_root=self.fs_root, passive=self.passive)
        self.proc = spawn([COSFTPD, "serve", "-c", conf, "--no-check"], "cosftpd-ftp")
        wait_port(self.port, self.proc)

    def stop(self):
        stop(self.proc)


class Pyftpdlib(Tool):
    """pyftpdlib (a Python FTP server, from PyPI into bench/.venv) serving a local directory."""
    name, kind, how = "pyftpdlib", "ftp", "pyftpdlib (PyPI, bench/.venv) serving the directory"

    def __init__(self, root):
        self.root = root

    def start(self):
        self.port = free_port()
        self.proc = spawn([VENV_PYTHON, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(self.port), "-w",
                           "-d", self.root, "-u", USER, "-P", PASSWORD, "-r", "54000-54999"], "pyftpdlib")
        wait_port(self.port, self.proc)

    def stop(self):
        stop(self.proc)


class RcloneFtp(Tool):
    name, kind, how = "rclone serve ftp", "ftp", "rclone serve ftp (defaults: --vfs-cache-mode off)"

    def __init__(self, passive=(51000, 51999)):
        self.passive = passive

    def start(self):
        self.port = free_port()
        self.proc = spawn([RCLONE, "serve", "ftp", f"bench:{BUCKET}", "--addr", f"127.0.0.1:{self.port}",
                           "--user", USER, "--pass", PASSWORD, "--passive-port", f"{self.passive[0]}-{self.passive[1]}",
                           "--log-level", "ERROR"], "rclone-ftp", env=STORE.rclone_env())
        wait_port(self.port, self.proc)

    def stop(self):
        stop(self.proc)


def bdi_of(path):
    """The sysfs directory of the backing device of the filesystem mounted at `path` (read_ahead_kb lives there)."""
    dev = os.stat(path).st_dev
    return f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}"


def read_ahead_kb(path):
    with contextlib.suppress(OSError), open(os.path.join(bdi_of(path), "read_ahead_kb")) as f:
        return int(f.read().strip())
    return None


class CosftpdMount(Tool):
    name, kind, how = "cosftpd mount", "mount", "cosftpd mount (mount_enable = true)"

    def __init__(self, read_ahead=None, owner=None):
        """read_ahead: KiB written to the mount's read_ahead_kb after mounting (download-only runs); owner: the
        user the mount shows as owner (vsftpd's guest user, which the kernel then lets write)."""
        self.read_ahead, self.owner = read_ahead, owner
        self.download_only = read_ahead is not None
        if read_ahead:
            self.name = f"cosftpd mount (read_ahead_kb {read_ahead})"
            self.how = f"cosftpd mount with /sys/class/bdi/<mount>/read_ahead_kb = {read_ahead} (download only)"

    def start(self):
        self.mnt = os.path.join(WORK_DIR, "mnt-cosftpd")
        os.makedirs(self.mnt, exist_ok=True)
        conf = os.path.join(WORK_DIR, "cosftpd-mount.conf")
        extra = []
        if self.owner:
            user = pwd.getpwnam(self.owner)
            extra = [f"mount_uid = {user.pw_uid}", f"mount_gid = {user.pw_gid}"]
        cosftpd_conf(conf, self.mnt, mount=True, extra=extra)
        self.proc = spawn([COSFTPD, "mount", "-c", conf, "--no-check"], "cosftpd-mount")
        wait_mounted(self.mnt, self.proc)
        if self.read_ahead:
            # after the mount's first request: cosftpd sets its own readahead then (see src/fuse/readahead.rs)
            os.stat(self.mnt)
            with open(os.path.join(bdi_of(self.mnt), "read_ahead_kb"), "w") as f:
                f.write(str(self.read_ahead))
        self.read_ahead_seen = read_ahead_kb(self.mnt)

    def stop(self):
        stop(self.proc)  # SIGTERM: cosftpd unmounts itself
        unmount(self.mnt)


class RcloneMount(Tool):
    name, kind, how = "rclone mount", "mount", "rclone mount (defaults: --vfs-cache-mode off)"

    def start(self):
        self.mnt = os.path.join(WORK_DIR, "mnt-rclone")
        os.makedirs(self.mnt, exist_ok=True)
        self.proc = spawn([RCLONE, "mount", f"bench:{BUCKET}", self.mnt, "--allow-other", "--log-level", "ERROR"],
                          "rclone-mount", env=STORE.rclone_env())
        wait_mounted(self.mnt, self.proc)

    def stop(self):
        unmount(self.mnt)
        stop(self.proc)


class S3fsMount(Tool):
    name, kind, how = "s3fs", "mount", "s3fs (Debian 1.90, defaults)"

    def start(self):
        self.mnt = os.path.join(WORK_DIR, "mnt-s3fs")
        os.makedirs(self.mnt, exist_ok=True)
        pw = os.path.join(WORK_DIR, "s3fs-passwd")
        with open(pw, "w") as f:
            f.write(f"{AK}:{SK}\n")
        os.chmod(pw, 0o600)
        opts = (f"url={STORE.endpoint},use_path_request_style,passwd_file={pw},allow_other,endpoint={REGION},"
                "umask=0000")
        self.proc = spawn(["s3fs", BUCKET, self.mnt, "-f", "-o", opts], "s3fs")
        wait_mounted(self.mnt, self.proc)

    def stop(self):
        unmount(self.mnt)
        stop(self.proc)


class LocalDir(Tool):
    """Not a store: a plain tmpfs directory, so that vsftpd over it shows what the FTP protocol and the clients
    cost by themselves (the floor any FTP server over a store can approach)."""
    name, kind, how = "tmpfs dir", "mount", "a plain directory on tmpfs (no object store)"

    def __init__(self, path=None, name=None):
        self.mnt = path or os.path.join(WORK_DIR, "localdir")
        if name:
            self.name = name

    def procs(self):
        return []

    def start(self):
        os.makedirs(self.mnt, exist_ok=True)
        os.chmod(self.mnt, 0o777)  # vsftpd writes as its guest user

    def stop(self):
        pass


class VsftpdOver(Tool):
    kind = "ftp"

    def __init__(self, mount, passive=(52000, 52999)):
        self.mount, self.passive = mount, passive
        self.name = f"vsftpd + {mount.name}"
        self.how = f"Debian vsftpd (contrib/vsftpd/gen_vsftpd.py) serving the {mount.name} mount"
        self.slug = "vsftpd-" + mount.name.split()[0]

    def procs(self):
        return [self.proc, *self.mount.procs()]

    @property
    def local_root(self):
        return self.mount.mnt if isinstance(self.mount, LocalDir) else None

    def peak_rss(self):
        return self.mount.peak_rss()

    def start(self):
        self.mount.start()
        self.port = free_port()
        d = os.path.join(WORK_DIR, self.slug)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "account.conf")
        with open(conf, "w") as f:
            f.write(f"[COS_ACCOUNT_0]\nhome_dir = {self.mount.mnt}\nftp_login_user_name = {USER}\n"
                    f"ftp_login_user_password = {PASSWORD}\nauthority = RW\n[NETWORK]\n"
                    f"passive_port = {self.passive[0]},{self.passive[1]}\n")
        subprocess.run([sys.executable, GEN_VSFTPD, conf, os.path.join(d, "out"), "--listen-port", str(self.port),
                        "--listen-address", "127.0.0.1", "--pam-service", PAM_SERVICE], check=True,
                       capture_output=True)
        with open(os.path.join(d, "out", "vsftpd.conf"), "a") as f:
            # as for cosftpd (max_connection_per_ip = 0): the sessions test opens 100 connections from 127.0.0.1
            f.write("xferlog_enable=NO\nmax_per_ip=0\nmax_clients=0\n")
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        self.proc = spawn(["vsftpd", os.path.join(d, "out", "vsftpd.conf")], self.slug)
        wait_port(self.port, self.proc)

    def stop(self):
        stop(self.proc)
        self.mount.stop()


class Redis:
    """A redis-server for the cluster cases (no persistence), fresh for each run."""

    def start(self):
        self.port = free_port()
        self.proc = spawn([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no"], "redis")
        wait_port(self.port, self.proc)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def command(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args))
            data = b""
            while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace")

    def script_calls(self):
        """EVALSHA + EVAL calls so far: every shared decision of cosftpd is one script."""
        calls = 0
        for line in self.command("INFO", "commandstats").splitlines():
            if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
                calls += int(line.split("calls=")[1].split(",")[0])
        return calls

    def stop(self):
        stop(self.proc)


class CosftpdCluster(Tool):
    """N `cosftpd serve` nodes on 127.0.0.1{n}, each with its own passive range and masquerade address, sharing
    state on one Redis (or none), behind HAProxy with send-proxy-v2 (or reached directly, one node)."""
    kind = "ftp"

    def __init__(self, nodes, redis=True, proxy=True):
        self.nodes, self.with_redis, self.with_proxy = nodes, redis, proxy
        parts = [f"{nodes} node{'s' if nodes > 1 else ''}"]
        parts.append("HAProxy" if proxy else "direct")
        parts.append("Redis" if redis else "no Redis")
        self.name = "cosftpd " + ", ".join(parts)
        self.how = self.name
        self.redis = Redis() if redis else None

    def procs(self):
        return [*self.node_procs, *([self.haproxy] if self.with_proxy else []),
                *([self.redis.proc] if self.redis else [])]

    def start(self):
        if self.redis:
            self.redis.start()
        self.node_procs, backends = [], []
        for n in range(1, self.nodes + 1):
            ip, port = f"127.0.0.{10 + n}", free_port()
            home = os.path.join(WORK_DIR, f"home-node{n}")
            os.makedirs(home, exist_ok=True)
            conf = os.path.join(WORK_DIR, f"cosftpd-node{n}.conf")
            network = [f"masquerade_address = {ip}"] + (["proxy_protocol_from = 127.0.0.1"] if self.with_proxy else [])
            sections = ["", "[CLUSTER]", f"redis_url = {self.redis.url}", f"node_name = node{n}"] if self.redis else []
            cosftpd_conf(conf, home, mount=False, ftp_port=port, passive=(54000 + n * 300, 54000 + n * 300 + 299),
                         listen=ip, network=network, sections=sections)
            proc = spawn([COSFTPD, "serve", "-c", conf, "--no-check"], f"cosftpd-node{n}")
            wait_port(port, proc, host=ip)
            self.node_procs.append(proc)
            backends.append(f"{ip}:{port}")
        if self.with_proxy:
            self.port = free_port()
            cfg = os.path.join(WORK_DIR, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(haproxy_config(self.port, backends))
            self.haproxy = spawn([HAPROXY, "-f", cfg, "-db"], "haproxy")
            wait_port(self.port, self.haproxy)
        else:
            self.port = int(backends[0].split(":")[1])
            self.host = backends[0].split(":")[0]

    def stop(self):
        if self.with_proxy:
            stop(self.haproxy)
        for p in self.node_procs:
            stop(p)
        if self.redis:
            self.redis.stop()


def haproxy_config(port, backends):
    """The HAProxy configuration of docs/CLUSTER.md (and tests/common/services.rs), with the bench's addresses."""
    lines = ["global", "    maxconn 4000", "", "defaults", "    mode tcp", "    timeout connect 5s",
             "    timeout client 1h", "    timeout server 1h", "    retries 3", "    option redispatch", "",
             "frontend ftp", f"    bind 127.0.0.1:{port}", "    default_backend cosftpd", "", "backend cosftpd",
             "    balance roundrobin"]
    lines += [f"    server node{n} {b} send-proxy-v2 check inter 2s" for n, b in enumerate(backends, 1)]
    return "\n".join(lines) + "\n"


def install_pam():
    """vsftpd needs a PAM service; for the bench one that lets the bench user in (removed at exit)."""
    path = f"/etc/pam.d/{PAM_SERVICE}"
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("# cosftpd bench (bench/bench.py): removed when the bench ends\n"
                    "auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\n")
        CREATED_FILES.append(path)


def all_tools():
    tools = [CosftpdFtp(), RcloneFtp(), VsftpdOver(S3fsMount()), VsftpdOver(CosftpdMount(owner="ftp")),
             VsftpdOver(LocalDir()), CosftpdMount(), *[CosftpdMount(read_ahead=kb) for kb in READ_AHEAD_KB],
             RcloneMount(), S3fsMount()]
    if TOOLS != "all":
        wanted = {t.strip() for t in TOOLS.split(",")}
        tools = [t for t in tools if t.name in wanted]
    return tools


@contextlib.contextmanager
def running(tool):
    tool.start()
    try:
        yield tool
    finally:
        tool.stop()


# ---------------------------------------------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------------------------------------------

def run_cmd(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip()[:800]}")
    return r


def ftp_url(tool, path):
    return f"ftp://{USER}:{PASSWORD}@127.0.0.1:{tool.port}/{path}"


def curl_stor(tool, src, key):
    run_cmd(["curl", "-sS", "--fail", "-T", src, ftp_url(tool, key)])


def curl_retr(tool, key):
    r = run_cmd(["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}", ftp_url(tool, key)])
    return int(float(r.stdout.strip() or 0))


def dd(src, dst):
    r = run_cmd(["dd", f"if={src}", f"of={dst}", "bs=1M"])
    return int(r.stderr.strip().splitlines()[-1].split()[0])


def lftp(tool, script):
    run_cmd(["lftp", "-u", f"{USER},{PASSWORD}", "-p", str(tool.port), "127.0.0.1", "-e",
             "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 60; " + script + "; bye"])


def ftp_list(tool, path):
    """LIST over ftplib: seconds to the first data byte and to the end, and the number of lines."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", tool.port, timeout=120)
    ftp.login(USER, PASSWORD)
    ftp.sendcmd("TYPE A")
    t0 = time.monotonic()
    conn = ftp.transfercmd(f"LIST {path}")
    first = None
    data = bytearray()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        if first is None:
            first = time.monotonic() - t0
        data += chunk
    conn.close()
    ftp.voidresp()
    end = time.monotonic() - t0
    ftp.quit()
    return first or end, end, data.count(b"\n")


def ftp_sessions(tool, prefix):
    payloads = [bytes((i * 7 + n) % 251 for i in range(n)) for n in SESSION_SIZES]
    totals = {"bytes": 0, "errors": 0, "samples": []}

    def note(op, e):
        with lock:
            if len(totals["samples"]) < 5:
                totals["samples"].append(f"{op}: {type(e).__name__}: {e}")
    lock = threading.Lock()
    start = threading.Barrier(SESSIONS)

    def session(n):
        moved = errors = 0
        stage = "connect"
        try:
            ftp = ftplib.FTP()
            start.wait(60)
            # Connections arrive 5 ms apart (100 within half a second): a burst of 100 simultaneous connects
            # overflows vsftpd's listen backlog of 32, and the clients whose handshake was dropped then wait for a
            # banner that never comes. Every FTP server here gets the same ramp.
            time.sleep(n * 0.005)
            # ftplib ignores the address of a PASV reply by default and reuses the control connection's: through
            # a balancer that is the balancer's, so the node's own address must be trusted (docs/CLUSTER.md).
            ftp.trust_server_pasv_ipv4_address = True
            ftp.connect(getattr(tool, "host", "127.0.0.1"), tool.port, timeout=120)
            stage = "login"
            ftp.login(USER, PASSWORD)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            note(stage, e)
            with lock:
                totals["errors"] += 2 * len(payloads)
            return
        for i, body in enumerate(payloads):
            try:
                ftp.storbinary(f"STOR {prefix}s{n:03}-f{i}", io.BytesIO(body))
                moved += len(body)
            except Exception as e:  # noqa: BLE001
                note("STOR", e)
                errors += 1
        for i, body in enumerate(payloads):
            got = bytearray()
            try:
                ftp.retrbinary(f"RETR {prefix}s{n:03}-f{i}", got.extend)
                if bytes(got) != body:
                    note("RETR", ValueError(f"got {len(got)} bytes, wrong contents"))
                    errors += 1
                moved += len(got)
            except Exception as e:  # noqa: BLE001
                note("RETR", e)
                errors += 1
        with contextlib.suppress(Exception):
            ftp.quit()
        with lock:
            totals["bytes"] += moved
            totals["errors"] += errors

    threads = [threading.Thread(target=session, args=(n,), daemon=True) for n in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if totals["samples"]:
        log(f"{tool.name}: first errors: {totals['samples']}")
    return totals["bytes"], totals["errors"], totals["samples"]


class AioFtp:
    """A minimal asyncio FTP client (passive mode, binary): enough for a thousand sessions in one process, where a
    thread per ftplib session would measure Python's threads rather than the server."""

    def __init__(self, port, timeout=120):
        self.port, self.timeout = port, timeout

    async def connect(self):
        self.r, self.w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), self.timeout)
        await self.expect("220")

    async def reply(self):
        line = await asyncio.wait_for(self.r.readline(), self.timeout)
        if not line:
            raise ConnectionError("control connection closed")
        code = line[:3].decode()
        if line[3:4] == b"-":
            while True:
                more = await asyncio.wait_for(self.r.readline(), self.timeout)
                if not more:
                    raise ConnectionError("control connection closed")
                if more[:3].decode() == code and more[3:4] == b" ":
                    break
        return code, line.decode(errors="replace").strip()

    async def expect(self, prefix):
        code, line = await self.reply()
        if not code.startswith(prefix):
            raise RuntimeError(line)
        return line

    async def cmd(self, line, prefix):
        self.w.write(line.encode() + b"\r\n")
        return await self.expect(prefix)

    async def login(self):
        await self.cmd(f"USER {USER}", "3")
        await self.cmd(f"PASS {PASSWORD}", "2")
        await self.cmd("TYPE I", "2")

    async def data(self):
        line = await self.cmd("EPSV", "229")
        port = int(line.split("(")[1].split("|")[3])
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), self.timeout)

    async def stor(self, name, body):
        dr, dw = await self.data()
        await self.cmd(f"STOR {name}", "1")
        dw.write(body)
        await dw.drain()
        dw.close()
        await dw.wait_closed()
        await self.expect("2")

    async def retr(self, name):
        dr, dw = await self.data()
        await self.cmd(f"RETR {name}", "1")
        got = bytearray()
        while True:
            chunk = await asyncio.wait_for(dr.read(65536), self.timeout)
            if not chunk:
                break
            got += chunk
        dw.close()
        await self.expect("2")
        return bytes(got)

    async def quit(self):
        with contextlib.suppress(Exception):
            await self.cmd("QUIT", "2")
        self.w.close()


def many_sessions(tool, prefix, count, sizes, ramp=0.001, retrieve=True):
    """`count` sessions log in, `ramp` seconds apart; when all are in, each uploads one file of each size, then
    downloads them back and checks them. Returns (bytes, seconds from the start of the transfers to the end of
    the last, errors, error samples, seconds the logins took)."""
    payloads = [bytes((i * 7 + n) % 251 for i in range(n)) for n in sizes]
    totals = {"bytes": 0, "errors": 0, "samples": []}

    def note(op, e):
        totals["errors"] += 1
        if len(totals["samples"]) < 5:
            totals["samples"].append(f"{op}: {type(e).__name__}: {e}")

    async def main():
        in_count = 0
        all_in = asyncio.Event()

        def arrived():
            nonlocal in_count
            in_count += 1
            if in_count == count:
                all_in.set()

        async def session(n):
            ftp = AioFtp(tool.port)
            try:
                await asyncio.sleep(n * ramp)
                await ftp.connect()
                await ftp.login()
            except Exception as e:  # noqa: BLE001 - every failure is counted
                note("login", e)
                arrived()
                return
            arrived()
            await all_in.wait()
            for i, body in enumerate(payloads):
                try:
                    await ftp.stor(f"{prefix}s{n:04}-f{i}", body)
                    totals["bytes"] += len(body)
                except Exception as e:  # noqa: BLE001
                    note("STOR", e)
            if retrieve:
                for i, body in enumerate(payloads):
                    try:
                        got = await ftp.retr(f"{prefix}s{n:04}-f{i}")
                        totals["bytes"] += len(got)
                        if got != body:
                            note("RETR", ValueError(f"got {len(got)} bytes, wrong contents"))
                    except Exception as e:  # noqa: BLE001
                        note("RETR", e)
            await ftp.quit()

        t0 = time.monotonic()
        tasks = [asyncio.create_task(session(n)) for n in range(count)]
        await all_in.wait()
        t1 = time.monotonic()
        await asyncio.gather(*tasks)
        return time.monotonic() - t1, t1 - t0

    wall, login = asyncio.run(main())
    if totals["samples"]:
        log(f"{tool.name}: first errors: {totals['samples']}")
    return totals["bytes"], wall, totals["errors"], totals["samples"], login


def missing_names(tool, count, sessions=8, pipeline=64):
    """SIZE of `count` distinct names that do not exist, over `sessions` sessions, `pipeline` commands in flight
    on each. Returns the number of 550 answers."""
    async def main():
        answers = {"550": 0, "other": 0}

        async def session(k):
            ftp = AioFtp(tool.port)
            await ftp.connect()
            await ftp.login()
            names = range(k, count, sessions)
            pending = 0
            for i in names:
                ftp.w.write(f"SIZE missing/{i:09}-{'x' * 40}\r\n".encode())
                pending += 1
                if pending >= pipeline:
                    code, _ = await ftp.reply()
                    answers["550" if code == "550" else "other"] += 1
                    pending -= 1
                    await ftp.w.drain()
            while pending:
                code, _ = await ftp.reply()
                answers["550" if code == "550" else "other"] += 1
                pending -= 1
            await ftp.quit()

        await asyncio.gather(*(session(k) for k in range(sessions)))
        return answers

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------------------------

RESULTS = []


def add(section, metric, tool, run, **values):
    rec = {"section": section, "metric": metric, "tool": tool, "run": run, **values}
    RESULTS.append(rec)
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in values.items()}
    log(f"{section}/{metric} {tool} run {run}: {shown}")


def section_big(tools):
    src = os.path.join(WORK_DIR, "src-big")
    size = SIZE_MB * MIB
    if not os.path.exists(src) or os.path.getsize(src) != size:
        log(f"writing a {SIZE_MB} MiB random source file")
        with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
            left = size
            while left:
                chunk = r.read(min(left, 8 * MIB))
                w.write(chunk)
                left -= len(chunk)
    for run in range(1, RUNS + 1):
        key = "big-direct"
        with Meter(STORE.pid, []) as m:
            direct("put", src, key)
        add("big", "upload", "direct", run, **m.record(bytes=size))
        with Meter(STORE.pid, []) as m:
            got = direct("get", key, "/dev/null")[0]["bytes"]
        add("big", "download", "direct", run, **m.record(bytes=got))
        for tool in tools:
            if getattr(tool, "download_only", False):
                # the direct client's object, read through a fresh mount with a raised read_ahead_kb
                with running(tool):
                    with Meter(STORE.pid, tool.pids()) as m:
                        got = dd(os.path.join(tool.mnt, "big-direct"), "/dev/null")
                    add("big", "download", tool.name, run, peak_rss_mib=tool.peak_rss(),
                        read_ahead_kb=tool.read_ahead_seen, **m.record(bytes=got))
                continue
            key = "big-" + tool.name.replace(" ", "-").replace("+", "")
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    if tool.kind == "ftp":
                        curl_stor(tool, src, key)
                    else:
                        dd(src, os.path.join(tool.mnt, key))
                add("big", "upload", tool.name, run, peak_rss_mib=tool.peak_rss(), **m.record(bytes=size))
            # a fresh server or mount for the download: nothing is served from what the upload left in memory
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    if tool.kind == "ftp":
                        got = curl_retr(tool, key)
                    else:
                        got = dd(os.path.join(tool.mnt, key), "/dev/null")
                extra = {"read_ahead_kb": tool.read_ahead_seen} if hasattr(tool, "read_ahead_seen") else {}
                add("big", "download", tool.name, run, peak_rss_mib=tool.peak_rss(), **extra,
                    **m.record(bytes=got))
            remove(key, tool)
        delete_prefix("big-direct")


def section_small(tools):
    src = os.path.join(WORK_DIR, "src-small")
    if not os.path.isdir(src):
        os.makedirs(src)
        for i in range(SMALL_FILES):
            with open(os.path.join(src, f"f{i:05}"), "wb") as f:
                f.write(os.urandom(SMALL_KB * 1024))
    total = SMALL_FILES * SMALL_KB * 1024
    ftp_tools = [t for t in tools if t.kind == "ftp"]
    for run in range(1, RUNS + 1):
        prefix = f"small-direct-{run}/"
        with Meter(STORE.pid, []) as m:
            r = direct("small", prefix, SMALL_FILES, SMALL_KB * 1024)
        cores = m.store / m.wall
        for rec, metric in zip(r, ("upload", "download")):
            add("small", metric, "direct", run, wall=rec["secs"], bytes=rec["bytes"], files=SMALL_FILES,
                store_cpu=cores * rec["secs"])
        delete_prefix(prefix)
        # the direct client doing what cosftpd's STOR does for a new name: HEAD key, list key/ (1), PUT
        prefix = f"small-checks-{run}/"
        r = direct("small", prefix, SMALL_FILES, SMALL_KB * 1024, "--with-checks")
        add("small", "upload", "direct + STOR's checks", run, wall=r[0]["secs"], bytes=r[0]["bytes"],
            files=SMALL_FILES)
        delete_prefix(prefix)
        for tool in ftp_tools:
            remote = f"small-{tool.name.replace(' ', '-').replace('+', '')}-{run}"
            make_dir(remote, tool)
            back = os.path.join(WORK_DIR, "small-back")
            shutil.rmtree(back, ignore_errors=True)
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    lftp(tool, f"mirror -R {src} {remote}")
                add("small", "upload", tool.name, run, files=SMALL_FILES, **m.record(bytes=total))
                with Meter(STORE.pid, tool.pids()) as m:
                    lftp(tool, f"mirror -X .keep {remote} {back}")
                names = [n for n in os.listdir(back) if n != ".keep"]
                got = sum(os.path.getsize(os.path.join(back, n)) for n in names)
                if len(names) != SMALL_FILES or got != total:
                    log(f"WARNING {tool.name}: mirror back gave {len(names)} files, {got} bytes")
                add("small", "download", tool.name, run, files=len(names), **m.record(bytes=got))
            remove(remote + "/", tool)
            shutil.rmtree(back, ignore_errors=True)


def section_list(tools):
    prefix = "list/"
    log(f"seeding {LIST_OBJECTS} objects under {prefix}")
    direct("put-many", prefix, LIST_OBJECTS, 100, 32)
    for run in range(1, RUNS + 1):
        with Meter(STORE.pid, []) as m:
            rec = direct("list", prefix)[0]
        add("list", "list", "direct", run, wall=rec["secs"], first=rec["first_secs"], entries=rec["entries"],
            store_cpu=m.store / m.wall * rec["secs"])
        for tool in tools:
            if getattr(tool, "local_root", None) or isinstance(tool, LocalDir):
                continue  # the objects are in the store
            if getattr(tool, "download_only", False):
                continue  # read_ahead_kb changes reads, not listings
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    if tool.kind == "ftp":
                        first, _end, lines = ftp_list(tool, prefix.rstrip("/"))
                    else:
                        r = run_cmd(["ls", "-l", os.path.join(tool.mnt, prefix.rstrip("/"))])
                        lines = r.stdout.count("\n") - 1  # "total N"
                        first = None
                add("list", "list", tool.name, run, first=first, entries=lines, **m.record())
    delete_prefix(prefix)


def section_sessions(tools):
    ftp_tools = [t for t in tools if t.kind == "ftp"]
    sizes = ",".join(map(str, SESSION_SIZES))
    for run in range(1, RUNS + 1):
        prefix = f"sessions-direct-{run}/"
        with Meter(STORE.pid, []) as m:
            rec = direct("mixed", prefix, SESSIONS, sizes)[0]
        add("sessions", "mixed", "direct", run, wall=rec["secs"], bytes=rec["bytes"], errors=rec["errors"],
            store_cpu=m.store / m.wall * rec["secs"])
        delete_prefix(prefix)
        for tool in ftp_tools:
            prefix = f"sessions-{tool.name.replace(' ', '-').replace('+', '')}-{run}"
            make_dir(prefix, tool)
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    moved, errors, samples = ftp_sessions(tool, prefix + "/")
                add("sessions", "mixed", tool.name, run, bytes=moved, errors=errors, error_samples=samples,
                    **m.record())
            remove(prefix + "/", tool)


def section_cluster():
    """The 100-session workload against 1, 2 and 3 nodes behind HAProxy (on 2 cores: what the extra hops and Redis
    cost, not scale-out), and the Redis round trips per login and per STOR on one node reached directly."""
    variants = [CosftpdFtp(), CosftpdCluster(1, redis=True, proxy=False), CosftpdCluster(1, redis=True, proxy=True),
                CosftpdCluster(2), CosftpdCluster(3)]
    for run in range(1, RUNS + 1):
        for tool in variants:
            prefix = f"cluster-{tool.name.replace(' ', '-').replace(',', '')}-{run}"
            make_dir(prefix)
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    moved, errors, samples = ftp_sessions(tool, prefix + "/")
                add("cluster", "mixed", tool.name, run, bytes=moved, errors=errors, error_samples=samples,
                    **m.record())
            remove(prefix + "/")

    def logins(tool):
        host = getattr(tool, "host", "127.0.0.1")
        t0 = time.monotonic()
        for _ in range(CLUSTER_OPS):
            ftp = ftplib.FTP()
            ftp.connect(host, tool.port, timeout=60)
            ftp.login(USER, PASSWORD)
            ftp.quit()
        return (time.monotonic() - t0) / CLUSTER_OPS

    def stors(tool, prefix):
        host = getattr(tool, "host", "127.0.0.1")
        ftp = ftplib.FTP()
        ftp.connect(host, tool.port, timeout=60)
        ftp.login(USER, PASSWORD)
        t0 = time.monotonic()
        for i in range(CLUSTER_OPS):
            ftp.storbinary(f"STOR {prefix}/f{i}", io.BytesIO(b"x"))
        took = (time.monotonic() - t0) / CLUSTER_OPS
        ftp.quit()
        return took

    for run in range(1, RUNS + 1):
        for tool in [CosftpdFtp(), CosftpdCluster(1, redis=True, proxy=False)]:
            prefix = f"redis-cost-{run}-{'redis' if getattr(tool, 'redis', None) else 'plain'}"
            make_dir(prefix)
            with running(tool):
                redis = getattr(tool, "redis", None)
                c0 = redis.script_calls() if redis else 0
                login_s = logins(tool)
                c1 = redis.script_calls() if redis else 0
                stor_s = stors(tool, prefix)
                c2 = redis.script_calls() if redis else 0
            add("cluster", "redis-cost", tool.name, run, login_ms=login_s * 1000, stor_ms=stor_s * 1000,
                scripts_per_login=(c1 - c0) / CLUSTER_OPS if redis else 0,
                scripts_per_stor=(c2 - c1) / CLUSTER_OPS if redis else 0, wall=login_s + stor_s)
            remove(prefix + "/")


def section_many():
    """MANY_SESSIONS sessions at once on one server: all log in, then all transfer at the same moment."""
    wanted = {t.strip() for t in MANY_TOOLS.split(",")}
    # wide passive ranges below the ephemeral ports: a thousand listeners at once, and ports in TIME_WAIT
    candidates = [CosftpdFtp(passive=(16000, 23999)), VsftpdOver(LocalDir(), passive=(24000, 31999)),
                  RcloneFtp(passive=(8000, 15999))]
    tools = [t for t in candidates if t.name in wanted and (TOOLS == "all" or t.name in TOOLS)]
    sizes = ",".join(map(str, MANY_SIZES))
    for run in range(1, RUNS + 1):
        prefix = f"many-direct-{run}/"
        with Meter(STORE.pid, []) as m:
            rec = direct("mixed", prefix, MANY_SESSIONS, sizes)[0]
        add("many", "mixed", "direct", run, wall=rec["secs"], bytes=rec["bytes"], errors=rec["errors"],
            store_cpu=m.store / m.wall * rec["secs"])
        delete_prefix(prefix)
        for tool in tools:
            prefix = f"many-{tool.name.replace(' ', '-').replace('+', '')}-{run}"
            make_dir(prefix, tool)
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    moved, wall, errors, samples, login = many_sessions(tool, prefix + "/", MANY_SESSIONS,
                                                                       MANY_SIZES, ramp=MANY_RAMP)
                rec = m.record(bytes=moved, errors=errors, error_samples=samples, login_s=login,
                               peak_rss_mib=tool.peak_rss())
                # CPU over the whole measurement, throughput over the transfers (after the last login)
                rec.update(store_cpu=m.store / m.wall * wall, tool_cpu=m.tool / m.wall * wall,
                           client_cpu=m.client / m.wall * wall, wall=wall)
                add("many", "mixed", tool.name, run, **rec)
            remove(prefix + "/", tool)


def section_fs():
    """cosftpd's fs backend against vsftpd and pyftpdlib serving the same local directory: one large file."""
    root = FS_DIR or os.path.join(WORK_DIR, "fs-root")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o777)
    src = os.path.join(WORK_DIR, "src-fs")
    size = FS_MB * MIB
    with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
        left = size
        while left:
            chunk = r.read(min(left, 8 * MIB))
            w.write(chunk)
            left -= len(chunk)
    tools = [CosftpdFtp(fs_root=root, name="cosftpd FTP (fs)"), VsftpdOver(LocalDir(root, name="the directory")),
             Pyftpdlib(root)]
    for run in range(1, RUNS + 1):
        # the local copy: what the directory's filesystem itself does (no FTP)
        dest = os.path.join(root, "fs-local")
        with Meter(STORE.pid, []) as m:
            dd(src, dest)
        add("fs", "upload", "local dd", run, **m.record(bytes=size))
        with Meter(STORE.pid, []) as m:
            got = dd(dest, "/dev/null")
        add("fs", "download", "local dd", run, **m.record(bytes=got))
        os.remove(dest)
        for tool in tools:
            key = "fs-" + tool.name.split()[0]
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    curl_stor(tool, src, key)
                add("fs", "upload", tool.name, run, peak_rss_mib=tool.peak_rss(), **m.record(bytes=size))
            with running(tool):
                with Meter(STORE.pid, tool.pids()) as m:
                    got = curl_retr(tool, key)
                add("fs", "download", tool.name, run, peak_rss_mib=tool.peak_rss(), **m.record(bytes=got))
            if os.path.getsize(os.path.join(root, key)) != size:
                log(f"WARNING {tool.name}: {key} has {os.path.getsize(os.path.join(root, key))} bytes")
            os.remove(os.path.join(root, key))
    os.remove(src)


def section_memory():
    """Peak RSS of cosftpd (a fresh process each case) uploading over FTP, with memory_budget = BENCH_MEM_BUDGET."""
    def upload(tool, key, mib):
        feeder = subprocess.Popen(["head", "-c", str(mib * MIB), "/dev/zero"], stdout=subprocess.PIPE)
        try:
            run_cmd(["curl", "-sS", "--fail", "-T", "-", ftp_url(tool, key)], stdin=feeder.stdout)
        finally:
            feeder.stdout.close()
            feeder.wait()

    cases = [("idle", 0, 0)] + [(f"1 x {m} MiB upload", 1, m) for m in MEM_SIZES_MB]
    cases += [(f"{MEM_CONC} x {MEM_CONC_MB} MiB concurrent uploads", MEM_CONC, MEM_CONC_MB)]
    cases += [(f"1 x {SIZE_MB} MiB download (RETR)", -1, SIZE_MB)]
    for label, count, mib in cases:
        if count == -1:
            direct("put-zero", "mem-retr", mib * MIB)
        tool = CosftpdFtp(memory_budget=MEM_BUDGET)
        with running(tool):
            with Meter(STORE.pid, tool.pids()) as m:
                if count == 0:
                    time.sleep(1)
                elif count == -1:
                    curl_retr(tool, "mem-retr")
                elif count == 1:
                    upload(tool, f"mem-{mib}", mib)
                else:
                    threads = [threading.Thread(target=upload, args=(tool, f"mem-conc-{i}", mib), daemon=True)
                               for i in range(count)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
            moved = max(count, 1) * mib * MIB if count else 0
            add("memory", label, "cosftpd FTP", 1, peak_rss_mib=tool.peak_rss(), budget=MEM_BUDGET,
                **m.record(bytes=moved))
        delete_prefix("mem-")

    # Many sessions with the default budget: logged in and idle, then each uploading a 64 KiB file at once.
    passive = (16000, 23999)
    for label, sizes in ((f"{MANY_SESSIONS} sessions logged in, idle", []),
                         (f"{MANY_SESSIONS} x 64 KiB concurrent uploads", [65536])):
        tool = CosftpdFtp(memory_budget="512M", passive=passive)
        make_dir("mem-many")
        with running(tool):
            with Meter(STORE.pid, tool.pids()) as m:
                moved, wall, errors, samples, login = many_sessions(tool, "mem-many/", MANY_SESSIONS, sizes,
                                                                   retrieve=False)
            add("memory", label, "cosftpd FTP", 1, peak_rss_mib=tool.peak_rss(), budget="512M", errors=errors,
                error_samples=samples, login_s=login, **m.record(bytes=moved))
        delete_prefix("mem-many/")

    # A flood of names that do not exist (fs backend: the store answers at once; the cache is the same).
    if MISSING_NAMES:
        root = os.path.join(WORK_DIR, "fs-missing")
        os.makedirs(root, exist_ok=True)
        tool = CosftpdFtp(fs_root=root)
        with running(tool):
            before = vm_rss_mib(tool.proc.pid)
            with Meter(STORE.pid, tool.pids()) as m:
                answers = missing_names(tool, MISSING_NAMES)
            add("memory", f"SIZE of {MISSING_NAMES} missing names (fs)", "cosftpd FTP", 1,
                peak_rss_mib=tool.peak_rss(), rss_before_mib=before, rss_after_mib=vm_rss_mib(tool.proc.pid),
                answers=answers, budget="512M", **m.record(bytes=0))
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024 / 1024
    model = ""
    with contextlib.suppress(Exception), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    store_fs = subprocess.run(["df", "--output=fstype", os.path.dirname(STORE_DIR.rstrip("/"))], capture_output=True, text=True).stdout.split()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "cores": os.cpu_count(), "memory_gib": round(mem, 1),
        "cpu": model, "kernel": platform.release(), "loadavg_at_start": os.getloadavg(),
        "store_dir": STORE_DIR, "store_fs": store_fs[-1] if store_fs else "?",
        "rclone": subprocess.run([RCLONE, "version"], capture_output=True, text=True).stdout.splitlines()[0],
        "s3fs": (subprocess.run(["s3fs", "--version"], capture_output=True, text=True).stdout.splitlines() or [""])[0],
        "vsftpd": subprocess.run(["dpkg-query", "-W", "-f=${Version}", "vsftpd"], capture_output=True,
                                 text=True).stdout,
        "git": subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("BENCH_")},
        "pinned": PIN,
    }


def group(section, metric):
    rows = {}
    for r in RESULTS:
        if r["section"] == section and r["metric"] == metric:
            rows.setdefault(r["tool"], []).append(r)
    return rows


FLOOR_FS = "vsftpd + the directory"  # the fs section's reference
FLOOR = "vsftpd + tmpfs dir"  # vsftpd over a plain tmpfs directory: the FTP protocol's and the clients' cost


def speed(r):
    return r["bytes"] / r["wall"] / MB if r.get("bytes") else None


def cores(recs, k):
    return med([r.get(k) / r["wall"] for r in recs if r.get(k) is not None])


def throughput_table(section, metric, title, unit_note, ref="direct", floor=False):
    """Rows of one measurement; ratios are speed ratios (>1: faster than the reference), from medians; with
    `floor`, also against vsftpd over a tmpfs directory (the no-store floor)."""
    rows = group(section, metric)
    if not rows:
        return []
    r_wall = med([r["wall"] for r in rows.get(ref, [])])
    f_wall = med([r["wall"] for r in rows.get(FLOOR, [])])
    floor_col = floor and f_wall is not None
    ra_col = any("read_ahead_kb" in r for recs in rows.values() for r in recs)
    head = f"| tool | median s | MB/s | × {ref} |" + (" × floor |" if floor_col else "")
    head += " runs (s) | store CPU | tool CPU | client CPU | tool peak RSS MiB |" + (" read_ahead_kb |" if ra_col else "")
    sep = "|---|---:|---:|---:|" + ("---:|" if floor_col else "") + "---|---:|---:|---:|---:|" + ("---:|" if ra_col else "")
    out = [f"#### {title}", "", unit_note, "", head, sep]
    for tool, recs in rows.items():
        wall = med([r["wall"] for r in recs])
        ratio = r_wall / wall if r_wall and wall else None
        line = f"| {tool} | {fmt(wall)} | {fmt(med([speed(r) for r in recs]), 0)} | {fmt(ratio)} |"
        if floor_col:
            line += f" {fmt(f_wall / wall if wall else None)} |"
        line += (f" {', '.join(fmt(r['wall']) for r in recs)} | {fmt(cores(recs, 'store_cpu'))} | "
                 f"{fmt(cores(recs, 'tool_cpu'))} | {fmt(cores(recs, 'client_cpu'))} | "
                 f"{fmt(med([r.get('peak_rss_mib') for r in recs]), 0)} |")
        if ra_col:
            line += f" {fmt(recs[0].get('read_ahead_kb'))} |"
        out.append(line)
    # The no-store floor is off the scale of large transfers: charted only where it is the goal.
    CHARTS.append((f"{section}-{metric}", title, {t: r_wall / med([r["wall"] for r in recs])
                                                    for t, recs in rows.items() if r_wall and (floor or t != FLOOR)},
                   f"× {ref}"))
    return out + [""]


def list_table():
    rows = group("list", "list")
    if not rows:
        return []
    direct_rows = rows.get("direct", [])
    d_wall = med([r["wall"] for r in direct_rows])
    d_first = med([r.get("first") for r in direct_rows])
    out = [f"#### LIST / ls -l of a directory of {LIST_OBJECTS} objects", "",
           "Seconds; FTP: from sending LIST to the first data byte and to the end of the data (ftplib, "
           "PASV); mounts: `ls -l` of a fresh mount (time to its end); direct: OpenDAL lister (delimiter /), "
           "*first* is its first page. *first ÷ direct* is a time ratio (lower is better; the goal is ≤ 1.2); "
           "× direct is the speed ratio of the whole listing.", "",
           "| tool | first entry s | first ÷ direct first | all entries s | × direct | runs (s) | entries | "
           "store CPU | tool CPU |",
           "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    ratios = {}
    for tool, recs in rows.items():
        wall = med([r["wall"] for r in recs])
        first = med([r.get("first") for r in recs])
        ratio = d_wall / wall if d_wall and wall else None
        ratios[tool] = ratio
        out.append(f"| {tool} | {fmt(first, 3)} | {fmt(first / d_first if first and d_first else None)} | "
                   f"{fmt(wall, 3)} | {fmt(ratio)} | "
                   f"{', '.join(fmt(r['wall'], 3) for r in recs)} | {recs[0].get('entries')} | "
                   f"{fmt(cores(recs, 'store_cpu'))} | {fmt(cores(recs, 'tool_cpu'))} |")
    CHARTS.append(("list", f"LIST of {LIST_OBJECTS}, all entries", ratios, "× direct"))
    return out + [""]


def sessions_table(section, count, sizes, how):
    rows = group(section, "mixed")
    if not rows:
        return []
    d = med([speed(r) for r in rows.get("direct", [])])
    floor = med([speed(r) for r in rows.get(FLOOR, [])])
    size_list = "+".join(f"{s // 1024} KiB" for s in sizes)
    out = [f"#### {count} concurrent sessions, mixed small transfers", "",
           f"Each session logs in, uploads one file of each size ({size_list}), downloads them back and checks "
           f"them; {how} Direct: the same with {count} concurrent tasks in one process.", "",
           "| tool | median MB/s | × direct | × floor | runs (MB/s) | errors (all runs) | store CPU | tool CPU | "
           "client CPU | tool peak RSS MiB |",
           "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    ratios = {}
    for tool, recs in rows.items():
        mbps = med([speed(r) for r in recs])
        ratio = mbps / d if d and mbps else None
        ratios[tool] = ratio
        out.append(f"| {tool} | {fmt(mbps, 1)} | {fmt(ratio)} | {fmt(mbps / floor if floor and mbps else None)} | "
                   f"{', '.join(fmt(speed(r), 1) for r in recs)} | "
                   f"{sum(r['errors'] for r in recs)} | {fmt(cores(recs, 'store_cpu'))} | "
                   f"{fmt(cores(recs, 'tool_cpu'))} | {fmt(cores(recs, 'client_cpu'))} | "
                   f"{fmt(med([r.get('peak_rss_mib') for r in recs]), 0)} |")
    CHARTS.append((section, f"{count} concurrent sessions", ratios, "× direct"))
    return out + [""]


def cluster_tables():
    rows = group("cluster", "mixed")
    if not rows:
        return []
    sizes = "+".join(f"{s // 1024} KiB" for s in SESSION_SIZES)
    base = med([r["bytes"] / r["wall"] / MB for r in rows.get("cosftpd FTP", [])])
    out = [f"#### Cluster: {SESSIONS} concurrent sessions through 1, 2 and 3 nodes", "",
           f"The sessions workload above ({sizes} up and down per session) against one node reached directly "
           "(no Redis: `cosftpd FTP`), one node with Redis, and 1–3 nodes behind HAProxy (`send-proxy-v2`, round "
           "robin) sharing Redis. All on this one machine: the nodes, HAProxy, Redis, the store and the clients "
           "share its cores, so more nodes cannot add throughput here; this shows what the balancer, the PROXY "
           "header and Redis cost.", "",
           "| setup | median MB/s | × one node | runs (MB/s) | errors (all runs) | store CPU | nodes+HAProxy+Redis CPU | client CPU |",
           "|---|---:|---:|---|---:|---:|---:|---:|"]
    for tool, recs in rows.items():
        mbps = med([r["bytes"] / r["wall"] / MB for r in recs])
        ratio = mbps / base if base and mbps else None
        cpu = lambda k: med([r.get(k) / r["wall"] for r in recs if r.get(k) is not None])  # noqa: E731
        out.append(f"| {tool} | {fmt(mbps, 1)} | {fmt(ratio)} | "
                   f"{', '.join(fmt(r['bytes'] / r['wall'] / MB, 1) for r in recs)} | "
                   f"{sum(r['errors'] for r in recs)} | {fmt(cpu('store_cpu'))} | {fmt(cpu('tool_cpu'))} | "
                   f"{fmt(cpu('client_cpu'))} |")
    out.append("")
    rows = group("cluster", "redis-cost")
    if rows:
        out += [f"#### Cluster: the cost of Redis per login and per STOR ({CLUSTER_OPS} of each, sequential)", "",
                "One node reached directly, without and with `[CLUSTER]`. A login is connect, USER, PASS, QUIT "
                "(ftplib); a STOR is one 1-byte file in an open session (PASV, STOR, 226). Scripts: EVALSHA calls "
                "Redis counted (`INFO commandstats`), each one round trip.", "",
                "| setup | login ms | STOR ms | Redis scripts per login | per STOR |", "|---|---:|---:|---:|---:|"]
        for tool, recs in rows.items():
            out.append(f"| {tool} | {fmt(med([r['login_ms'] for r in recs]), 2)} | "
                       f"{fmt(med([r['stor_ms'] for r in recs]), 2)} | "
                       f"{fmt(med([r['scripts_per_login'] for r in recs]), 1)} | "
                       f"{fmt(med([r['scripts_per_stor'] for r in recs]), 1)} |")
        out.append("")
    return out


def memory_table():
    recs = [r for r in RESULTS if r["section"] == "memory"]
    if not recs:
        return []
    out = [f"#### cosftpd peak RSS (VmHWM), memory_budget = {MEM_BUDGET} unless the row says otherwise", "",
           "A fresh `cosftpd serve` for each case; uploads are `curl -T -` fed from /dev/zero, downloads go to "
           "/dev/null; the many-session rows use the asyncio client (all sessions log in, then all upload at "
           "once); the missing-names row asks SIZE of distinct names that do not exist (8 sessions, 64 commands "
           "in flight each, fs backend) and gives VmRSS before and after.", "",
           "| case | budget | peak RSS MiB | RSS before → after MiB | wall s | MB/s | tool CPU | errors |",
           "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in recs:
        mbps = r["bytes"] / r["wall"] / MB if r.get("bytes") else None
        around = (f"{fmt(r['rss_before_mib'], 0)} → {fmt(r['rss_after_mib'], 0)}"
                  if r.get("rss_after_mib") is not None else "–")
        out.append(f"| {r['metric']} | {r.get('budget', MEM_BUDGET)} | {fmt(r['peak_rss_mib'], 0)} | {around} | "
                   f"{fmt(r['wall'])} | {fmt(mbps, 0)} | {fmt(r['tool_cpu'] / r['wall'])} | "
                   f"{r.get('errors', 0)} |")
    return out + [""]


CHARTS = []  # (slug, title, {tool: ratio}, axis label), filled by the tables


def write_charts(prefix):
    """A horizontal bar chart (PNG) of each ratio table; returns [(slug, file name)]. Needs matplotlib (in
    bench/.venv); without it there are no charts."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is missing (bench/.venv): no charts")
        return []
    written = []
    for slug, title, ratios, label in CHARTS:
        items = [(t, v) for t, v in ratios.items() if v is not None]
        if not items:
            continue
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(items) + 1.0))
        names = [t for t, _ in items][::-1]
        values = [v for _, v in items][::-1]
        colors = ["#c0392b" if n.startswith("cosftpd") else ("#7f8c8d" if n in ("direct", "vsftpd + the directory")
                                                              else "#5d8aa8") for n in names]
        ax.barh(names, values, color=colors)
        ax.axvline(1.0, color="black", linewidth=0.8)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
        ax.set_xlabel(label + " (speed; >1 is faster)")
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, max(values) * 1.18)
        ax.tick_params(axis="y", labelsize=8)
        fig.tight_layout()
        path = f"{prefix}-{slug}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append((slug, os.path.basename(path)))
    return written


def report(meta, elapsed):
    size = f"{SIZE_MB} MiB" if SIZE_MB % 1024 else f"{SIZE_MB // 1024} GiB"
    lines = [
        f"### Run of {meta['date']} ({meta['cores']} cores, {meta['memory_gib']} GiB, {meta['cpu']}; "
        f"git {meta['git']})", "",
        f"Store: {meta['rclone']} `serve s3` on 127.0.0.1 over `{meta['store_dir']}` ({meta['store_fs']}). "
        f"Load average at start: {', '.join(f'{v:.2f}' for v in meta['loadavg_at_start'])}. "
        + ("The store ran on CPU 0 and everything else on the other CPUs (`BENCH_PIN=on`). "
           if meta.get("pinned") else "")
        + f"Medians of {RUNS} runs; bench.py took {elapsed:.0f} s. "
        "CPU columns are cores busy during the measurement (CPU seconds / wall seconds): *store* is the rclone "
        "S3 server, *tool* the server or mount under test (cosftpd, rclone, s3fs, vsftpd with its session "
        "processes), *client* curl / lftp / dd / ls / the Python FTP client / direct_s3.", "",
    ]
    lines += throughput_table("big", "upload", f"Upload of a {size} file",
                              "direct: `direct_s3 put`; FTP: `curl -T`; mounts: `dd bs=1M` into the mount "
                              "(time includes the close that completes the upload).")
    lines += throughput_table("big", "download", f"Download of a {size} file",
                              "direct: `direct_s3 get` to /dev/null; FTP: `curl -o /dev/null`; mounts: "
                              "`dd bs=1M` to /dev/null from a fresh mount.")
    lines += throughput_table("small", "upload", f"{SMALL_FILES} files of {SMALL_KB} KiB, upload",
                              "direct: sequential PUTs; FTP: `lftp mirror -R` into an existing directory. "
                              "× floor: against vsftpd over a tmpfs directory (no store; the goal is ≥ 0.85).",
                              floor=True)
    lines += throughput_table("small", "download", f"{SMALL_FILES} files of {SMALL_KB} KiB, download",
                              "direct: sequential GETs; FTP: `lftp mirror` back to tmpfs. × floor: as above.",
                              floor=True)
    lines += list_table()
    lines += sessions_table("sessions", SESSIONS, SESSION_SIZES,
                            "aggregate MB/s over the wall time of all sessions (Python ftplib threads, connections "
                            "5 ms apart). × floor: against vsftpd over a tmpfs directory (no store).")
    lines += sessions_table("many", MANY_SESSIONS, MANY_SIZES,
                            f"all sessions log in first ({MANY_RAMP * 1000:g} ms apart, asyncio client in one "
                            "process), then all "
                            "transfer at once; aggregate MB/s from the last login to the end of the last session. "
                            "× floor: against vsftpd over a tmpfs directory (no store).")
    lines += throughput_table("fs", "upload", f"fs backend: upload of a {FS_MB} MiB file",
                              "The same local directory served by each; `curl -T`; *local dd*: `dd bs=1M` into "
                              "the directory (no FTP).", ref=FLOOR_FS)
    lines += throughput_table("fs", "download", f"fs backend: download of a {FS_MB} MiB file",
                              "`curl -o /dev/null` from a fresh server; *local dd*: `dd bs=1M` to /dev/null.",
                              ref=FLOOR_FS)
    lines += cluster_tables()
    lines += memory_table()
    return "\n".join(lines) + "\n"


def main():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    for binary in (COSFTPD, DIRECT, RCLONE):
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: run bench/run.sh (it builds and installs what is needed)")
    if PIN:
        others = set(range(os.cpu_count() or 1)) - STORE_CPUS
        if not others:
            sys.exit("BENCH_PIN=on needs at least 2 CPUs")
        # Inherited by everything this script starts; the store is started through taskset.
        os.sched_setaffinity(0, others)
    t0 = time.monotonic()
    meta = machine()
    log(f"machine: {meta}")
    try:
        shutil.rmtree(WORK_DIR, ignore_errors=True)
        shutil.rmtree(STORE_DIR, ignore_errors=True)
        os.makedirs(os.path.join(WORK_DIR, "logs"))
        STORE.start()
        install_pam()
        tools = all_tools()
        for name in SECTIONS:
            s0 = time.monotonic()
            log(f"== section {name}")
            if name == "big":
                section_big(tools)
            elif name == "small":
                section_small(tools)
            elif name == "list":
                section_list(tools)
            elif name == "sessions":
                section_sessions(tools)
            elif name == "memory":
                section_memory()
            elif name == "cluster":
                section_cluster()
            elif name == "many":
                section_many()
            elif name == "fs":
                section_fs()
            else:
                raise SystemExit(f"unknown section {name}")
            log(f"== section {name} took {time.monotonic() - s0:.0f} s")
    finally:
        elapsed = time.monotonic() - t0
        meta["elapsed_s"] = elapsed
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT + ".json", "w") as f:
            json.dump({"meta": meta, "results": RESULTS}, f, indent=1)
        text = report(meta, elapsed)
        charts = write_charts(OUT)
        if charts:
            text += "\n" + "\n".join(f"![{slug}]({name})" for slug, name in charts) + "\n"
        with open(OUT + ".md", "w") as f:
            f.write(text)
        logs = os.path.join(WORK_DIR, "logs")
        if os.path.isdir(logs):
            keep = OUT + "-logs"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(logs, keep)
        cleanup()
        log(f"wrote {OUT}.md and {OUT}.json in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
