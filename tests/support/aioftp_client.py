"""aioftp against the FTPS test server (tests/ftp_tls.rs): a PROT P upload, download and listing, over explicit
(AUTH TLS) or implicit TLS.

    python aioftp_client.py explicit|implicit HOST PORT USER PASSWORD

aioftp opens a passive data connection and completes its TLS handshake before it sends the transfer command (as
asyncio's open_connection(ssl=...) does), so the server must take the connection and answer the handshake at once,
not when the command arrives. Asserts as it goes; any failure ends the process with a traceback and a non-zero
status. Needs aioftp (tests/support/requirements.txt).
"""

import asyncio
import ssl
import sys

import aioftp

TIMEOUT = 30


async def session(mode, host, port, user, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if mode == "implicit":
        client = aioftp.Client(ssl=context, socket_timeout=TIMEOUT, connection_timeout=TIMEOUT)
        await client.connect(host, port)
    else:
        client = aioftp.Client(socket_timeout=TIMEOUT, connection_timeout=TIMEOUT)
        await client.connect(host, port)
        # AUTH TLS, then PBSZ 0 and PROT P.
        await client.upgrade_to_tls(context)
    await client.login(user, password)
    name = "aioftp-%s.bin" % mode
    body = bytes(range(256)) * (8 * 1024 + 3)
    async with client.upload_stream(name) as stream:
        await stream.write(body)
    got = bytearray()
    async with client.download_stream(name) as stream:
        async for block in stream.iter_by_block():
            got += block
    assert bytes(got) == body, "downloaded %d bytes, uploaded %d" % (len(got), len(body))
    names = [str(path) for path, _info in await client.list()]
    assert name in names, names
    await client.quit()
    print("ok", mode)


if __name__ == "__main__":
    mode, host, port, user, password = sys.argv[1:]
    asyncio.run(asyncio.wait_for(session(mode, host, int(port), user, password), 2 * TIMEOUT))
