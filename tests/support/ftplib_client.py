"""Python ftplib scenarios for the FTP client tests (tests/ftp_clients.rs, tests/ftp_tls.rs).

    python3 ftplib_client.py SCENARIO HOST PORT USER PASSWORD [ARGS...]

Each scenario drives a real client library against the server and asserts as it goes; any failure ends the
process with a traceback and a non-zero status, which the Rust test shows. Standard library only.
"""

import ftplib
import io
import os
import ssl
import sys
import threading
import time

TIMEOUT = 60


def plain(host, port, user, password):
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(host, port)
    ftp.login(user, password)
    return ftp


def explicit_tls(host, port, user, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=context, timeout=TIMEOUT)
    ftp.connect(host, port)
    ftp.auth()
    ftp.login(user, password)
    ftp.prot_p()
    return ftp


class ImplicitFTP_TLS(ftplib.FTP_TLS):
    """FTPS on a port that speaks TLS from the first byte (ftplib only does explicit AUTH TLS)."""

    def connect(self, host, port, timeout=TIMEOUT):
        self.host, self.port, self.timeout = host, port, timeout
        import socket

        raw = socket.create_connection((host, port), timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def implicit_tls(host, port, user, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    ftp = ImplicitFTP_TLS(context=context, timeout=TIMEOUT)
    ftp.connect(host, port)
    ftp.login(user, password)
    ftp.prot_p()
    return ftp


def expect_error(code, fn, *args):
    try:
        fn(*args)
    except ftplib.all_errors as e:
        assert str(e).startswith(code), "expected %s, got %r" % (code, e)
        return str(e)
    raise AssertionError("expected %s from %s%r" % (code, fn.__name__, args))


def walk(ftp, base):
    """Every ftplib call a program makes, in passive and active mode."""
    assert ftp.getwelcome().startswith("220"), ftp.getwelcome()
    ftp.mkd(base)
    ftp.cwd(base)
    assert ftp.pwd() == "/" + base, ftp.pwd()
    data = os.urandom(300_000)
    ftp.storbinary("STOR a.bin", io.BytesIO(data), blocksize=8192)
    assert ftp.size("a.bin") == len(data)
    out = io.BytesIO()
    ftp.retrbinary("RETR a.bin", out.write)
    assert out.getvalue() == data
    out = io.BytesIO()
    ftp.retrbinary("RETR a.bin", out.write, rest=1000)
    assert out.getvalue() == data[1000:]

    ftp.storlines("STOR t.txt", io.BytesIO(b"line1\nline2\n"))
    lines = []
    ftp.retrlines("RETR t.txt", lines.append)
    assert lines == ["line1", "line2"], lines
    ftp.voidcmd("TYPE I")

    assert sorted(ftp.nlst()) == ["a.bin", "t.txt"], ftp.nlst()
    entries = dict(ftp.mlsd(facts=["type", "size", "modify", "perm"]))
    assert entries["a.bin"]["type"] == "file", entries
    assert int(entries["a.bin"]["size"]) == len(data), entries
    assert "r" in entries["a.bin"]["perm"], entries
    listing = []
    ftp.dir(listing.append)
    assert any(line.startswith("-") and line.endswith(" a.bin") for line in listing), listing

    ftp.rename("t.txt", "u.txt")
    expect_error("550", ftp.rename, "t.txt", "v.txt")
    ftp.storbinary("APPE a.bin", io.BytesIO(b"more"))
    assert ftp.size("a.bin") == len(data) + 4
    ftp.storbinary("STOR a.bin", io.BytesIO(b"resumed"), rest=len(data) + 4)
    assert ftp.size("a.bin") == len(data) + 11
    expect_error("554", ftp.storbinary, "STOR a.bin", io.BytesIO(b"x"), 8192, None, 5)
    assert ftp.voidcmd("MDTM a.bin").startswith("213 20")
    assert ftp.sendcmd("STAT").startswith("211")
    assert ftp.sendcmd("SYST").startswith("215")
    assert ftp.sendcmd("FEAT").startswith("211")
    assert ftp.sendcmd("HELP").startswith("214")
    assert ftp.sendcmd("NOOP").startswith("200")
    expect_error("550", ftp.size, "missing")
    expect_error("550", ftp.retrbinary, "RETR missing", print)
    expect_error("550", ftp.cwd, "missing")
    expect_error("500", ftp.sendcmd, "123")

    # Active mode: the server connects to us (PORT).
    ftp.set_pasv(False)
    ftp.storbinary("STOR active.bin", io.BytesIO(data[:50_000]))
    out = io.BytesIO()
    ftp.retrbinary("RETR active.bin", out.write)
    assert out.getvalue() == data[:50_000]
    assert "active.bin" in ftp.nlst()
    ftp.set_pasv(True)

    for name in ["a.bin", "u.txt", "active.bin"]:
        ftp.delete(name)
    assert ftp.nlst() == []
    ftp.cwd("..")
    ftp.rmd(base)
    expect_error("550", ftp.rmd, base)
    ftp.quit()


def scenario_walk(host, port, user, password, base="py"):
    walk(plain(host, port, user, password), base)


def scenario_walk_tls(host, port, user, password, base="py"):
    ftp = explicit_tls(host, port, user, password)
    assert ftp.sendcmd("STAT").find("TLS") > 0
    walk(ftp, base)


def scenario_walk_implicit(host, port, user, password, base="py"):
    walk(implicit_tls(host, port, user, password), base)


def scenario_required(host, port, user, password):
    """tls_mode = required: no login in clear, no data in clear."""
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(host, port)
    expect_error("530", ftp.login, user, password)
    ftp.close()

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=context, timeout=TIMEOUT)
    ftp.connect(host, port)
    ftp.auth()
    ftp.login(user, password)
    # Logged in over TLS, but PROT P not given yet: data connections are refused.
    expect_error("521", ftp.nlst)
    ftp.sendcmd("PBSZ 0")
    expect_error("536", ftp.prot_c)
    ftp.prot_p()
    ftp.storbinary("STOR secret.txt", io.BytesIO(b"over TLS"))
    out = io.BytesIO()
    ftp.retrbinary("RETR secret.txt", out.write)
    assert out.getvalue() == b"over TLS"
    assert ftp.nlst() == ["secret.txt"], ftp.nlst()
    ftp.quit()


def scenario_abort(host, port, user, password, name):
    """ABOR while STOR streams (ftplib sends it as urgent data, the way most clients do)."""
    ftp = plain(host, port, user, password)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR " + name)
    chunk = b"x" * 65536
    sent = 0
    while sent < 2 * 1024 * 1024:
        conn.sendall(chunk)
        sent += len(chunk)
    # Wait until the server has data of ours: STAT during a transfer reports its progress.
    while True:
        stat = ftp.sendcmd("STAT")
        assert stat.startswith("213"), stat
        if int(stat.split(": ")[1].split(" ")[0]) > 0:
            break
        time.sleep(0.01)
    resp = ftp.abort()
    assert resp.startswith("426"), resp
    conn.close()
    resp = ftp.getresp()
    assert resp.startswith("226"), resp
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()


def scenario_too_large(host, port, user, password, name, size):
    """STOR of `size` bytes over single_file_max_size: the STOR itself is answered 552 (no connection reset while
    sending), and the next command gets its own reply."""
    ftp = plain(host, port, user, password)
    text = expect_error("552", ftp.storbinary, "STOR " + name, io.BytesIO(b"y" * int(size)))
    assert "single_file_max_size" in text, text
    assert ftp.sendcmd("NOOP").startswith("200")
    # The reply stream is in step: PWD gets its own 257, not a late answer to an earlier command.
    assert ftp.pwd() == "/"
    ftp.storbinary("STOR small-" + name, io.BytesIO(b"fits"))
    assert ftp.size("small-" + name) == 4
    ftp.quit()
    print("ok 552")


def scenario_concurrent(host, port, user, password, sessions, files):
    """`sessions` threads, each its own session uploading, listing, downloading and deleting `files` files."""
    sessions, files = int(sessions), int(files)
    errors = []
    start = threading.Barrier(sessions)

    def one(n):
        try:
            ftp = ftplib.FTP(timeout=TIMEOUT)
            ftp.connect(host, port)
            start.wait(timeout=TIMEOUT)
            ftp.login(user, password)
            d = "s%03d" % n
            ftp.mkd(d)
            ftp.cwd(d)
            bodies = {}
            for i in range(files):
                body = os.urandom(1000 + 997 * i + n)
                bodies["f%d" % i] = body
                ftp.storbinary("STOR f%d" % i, io.BytesIO(body))
            assert sorted(ftp.nlst()) == sorted(bodies), ftp.nlst()
            for name, body in bodies.items():
                out = io.BytesIO()
                ftp.retrbinary("RETR " + name, out.write)
                assert out.getvalue() == body, name
            for name in bodies:
                ftp.delete(name)
            ftp.cwd("/")
            ftp.rmd(d)
            ftp.quit()
        except Exception as e:  # reported below, with the session number
            errors.append("session %d: %r" % (n, e))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5 * TIMEOUT)
        assert not t.is_alive(), "a session hung"
    assert not errors, "%d of %d sessions failed:\n%s" % (len(errors), sessions, "\n".join(errors))
    print("ok %d sessions" % sessions)


def scenario_idle(host, port, user, password, sessions):
    """Logs in `sessions` sessions, prints READY, and keeps them until stdin closes (for RSS measurements)."""
    conns = [plain(host, port, user, password) for _ in range(int(sessions))]
    print("READY", flush=True)
    sys.stdin.read()
    for c in conns:
        c.quit()


if __name__ == "__main__":
    scenario, host, port, user, password, *args = sys.argv[1:]
    globals()["scenario_" + scenario](host, int(port), user, password, *args)
