"""Killed-client uploads against a running cosftpd with an `fs` store: `curl -T -` fed from a pipe and killed with
SIGKILL at a random point, N times; counts the killed uploads that were committed anyway (the goal is 0). Every
upload is cut short, so any object that appears is a truncated one. Standard library only.

    python3 bench/killed_uploads.py --host 127.0.0.2 --port 2399 --root /path/to/storage_root [--rounds 100]

With bench/delay_proxy.py in front of the server (--host the proxy's address), this measures a slow link; with the
server's log at `debug`, its lines "the control connection ended with the data connection" give how long after the
data connection each killed client's control connection ended (`after_us`) and the grace it had (`grace_us`).
"""

import argparse
import os
import random
import subprocess
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="user0")
    parser.add_argument("--password", default="pass0")
    parser.add_argument("--root", required=True, help="the fs store's storage_root")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--size", type=int, default=3 * 1024 * 1024)
    parser.add_argument("--settle", type=float, default=0.5, help="seconds to let the server settle a kill")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    chunk = b"k" * 65536
    committed = []
    for n in range(args.rounds):
        name = "killed-%d.bin" % n
        url = "ftp://%s:%s@%s:%d/%s" % (args.user, args.password, args.host, args.port, name)
        curl = subprocess.Popen(
            ["curl", "-sS", "-T", "-", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        send = rng.randrange(0, args.size - len(chunk))
        sent = 0
        try:
            while sent < send:
                curl.stdin.write(chunk)
                curl.stdin.flush()
                sent += len(chunk)
        except BrokenPipeError:
            pass
        time.sleep(rng.uniform(0, 0.1))
        curl.kill()
        curl.wait()
        time.sleep(args.settle)
        path = os.path.join(args.root, name)
        if os.path.exists(path):
            committed.append((name, os.path.getsize(path)))
    print("%d of %d killed uploads committed: %r" % (len(committed), args.rounds, committed))


if __name__ == "__main__":
    main()
