#!/usr/bin/env python3
"""What the integrity checks and the digests cost an upload: one large file uploaded over FTP (curl -T) to cosftpd
with upload_digests = none, the default (sha256,crc32) and all five, against the direct client uploading the same
file, on the same local S3 server as bench/bench.py (`rclone serve s3` on loopback, tmpfs). Every S3 part carries
its Content-MD5 in all three cosftpd cases (that check is not optional), so "none" against the direct client is
its cost, and the others add the digests kept with the file.

Run through bench/run.sh's install and build (or after it), as:

    python3 bench/digests.py            # BENCH_SIZE_MB [1024], BENCH_RUNS [3]

Runs are interleaved (run 1 of every case, then run 2, ...); the table gives medians, the ratio to the direct client
of the same run, and cosftpd's CPU seconds per GiB (user + system, from /proc).
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (the shared store, processes and cleanup of bench.py)

CASES = [
    ("none", "none"),
    ("default (sha256,crc32)", "sha256,crc32"),
    ("all (md5,sha1,sha256,sha512,crc32)", "md5,sha1,sha256,sha512,crc32"),
]


class CosftpdDigests(B.CosftpdFtp):
    def __init__(self, digests):
        super().__init__()
        self.digests = digests

    def start(self):
        self.port = B.free_port()
        home = os.path.join(B.WORK_DIR, "home-ftp")
        os.makedirs(home, exist_ok=True)
        conf = os.path.join(B.WORK_DIR, "cosftpd-digests.conf")
        B.cosftpd_conf(conf, home, mount=False, ftp_port=self.port)
        with open(conf, "a") as f:  # [OPTIONAL] is the last section
            f.write(f"upload_digests = {self.digests}\nupload_resume_ttl = 0\n")
        self.proc = B.spawn([B.COSFTPD, "serve", "-c", conf, "--no-check"], "cosftpd-digests")
        B.wait_port(self.port, self.proc)


def show_log_tail(name, lines=40):
    path = os.path.join(B.WORK_DIR, "logs", name + ".log")
    try:
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
    except OSError as e:
        tail = [f"(no log: {e})\n"]
    sys.stderr.write(f"--- last lines of {path}\n" + "".join(tail))


def main():
    size_mb = B.env_int("BENCH_SIZE_MB", 1024)
    runs = B.env_int("BENCH_RUNS", 3)
    os.makedirs(os.path.join(B.WORK_DIR, "logs"), exist_ok=True)
    src = os.path.join(B.WORK_DIR, f"digests-{size_mb}.bin")
    if not os.path.exists(src) or os.path.getsize(src) != size_mb * B.MIB:
        with open(src, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(B.MIB))
    B.CREATED_FILES.append(src)
    B.STORE.start()
    results = {"direct": []}
    cpu = {}
    try:
        for run in range(runs):
            B.delete_prefix("digests/")
            t = time.monotonic()
            B.direct("put", src, f"digests/direct-{run}.bin")
            results["direct"].append(size_mb * B.MIB / (time.monotonic() - t) / B.MB)
            for name, digests in CASES:
                tool = CosftpdDigests(digests)
                tool.start()
                try:
                    before = B.proc_cpu(tool.proc.pid)
                    t = time.monotonic()
                    B.curl_stor(tool, src, f"digests/{digests.replace(',', '-')}-{run}.bin")
                    took = time.monotonic() - t
                    used = B.proc_cpu(tool.proc.pid) - before
                except Exception:
                    show_log_tail("cosftpd-digests")  # the work directory (and the log) goes at cleanup
                    raise
                finally:
                    tool.stop()
                results.setdefault(name, []).append(size_mb * B.MIB / took / B.MB)
                cpu.setdefault(name, []).append(used / (size_mb / 1024))
                B.log(f"run {run + 1}: {name}: {results[name][-1]:.0f} MB/s, {cpu[name][-1]:.1f} CPU s/GiB")
    finally:
        B.cleanup()
    direct = statistics.median(results["direct"])
    print(f"\nUpload of {size_mb} MiB, median of {runs} runs, load before: {open('/proc/loadavg').read().split()[:3]}\n")
    print("| case | MB/s (median) | ratio to direct | cosftpd CPU s per GiB | runs (MB/s) |")
    print("|---|---|---|---|---|")
    print(f"| direct client | {direct:.0f} | 1.00 | | {', '.join(f'{v:.0f}' for v in results['direct'])} |")
    for name, _ in CASES:
        m = statistics.median(results[name])
        print(f"| cosftpd FTP, upload_digests = {name} | {m:.0f} | {m / direct:.2f} | "
              f"{statistics.median(cpu[name]):.1f} | {', '.join(f'{v:.0f}' for v in results[name])} |")


if __name__ == "__main__":
    main()
