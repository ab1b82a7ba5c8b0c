#!/usr/bin/env python3
"""A loopback S3 / COS server for cosftpd's integration tests: moto's S3 backend, served by werkzeug.

Run with the venv that scripts/test.sh builds (<repo>/.venv/bin/python, moto pinned in requirements.txt):

    .venv/bin/python tests/support/s3_server.py --mode s3|cos [--port N] [--buckets a,b] [--min-part-size B]
                                                [--verbose] [--ignore-stdin]

Protocol with the parent (tests/common/mod.rs):
  * binds 127.0.0.1 only; --port 0 (the default) lets the kernel pick a free port;
  * prints exactly one line `READY <port>` on stdout (flushed) once the socket is listening and the --buckets exist;
    if moto (or werkzeug) cannot be imported it prints `MISSING <reason>` instead and exits with status 3;
  * exits when its stdin reaches EOF (the parent died or dropped the pipe) or on SIGTERM/SIGINT, so it never
    outlives the test process. Started by hand from a shell, it runs until Ctrl-D / Ctrl-C (stdin from /dev/null
    would stop it at once: pass --ignore-stdin then).
  * nothing else goes to stdout; request logs (with --verbose or COSFTPD_S3_VERBOSE=1) and errors go to stderr.

Both modes serve moto's S3-only backend app (`moto.server.create_backend_app("s3")`), with no authentication:
signatures are never checked, and every request lands in one account (MOTO_ACCOUNT_ID, default 123456789012),
whatever its credentials say. A small WSGI middleware in front of it, in both modes:
  - gives a request without an Authorization header a dummy one (moto answers 403 to an unsigned GET of a
    private object: it emulates anonymous access), so plain curl / raw HTTP from a test works;
  - turns a PUT's form Content-Type (curl --data-binary's default) into application/octet-stream, else Flask
    eats the body as a form and moto stores an empty object;
  - answers ListObjects v1 (GET bucket without list-type=2: COS's only listing, OpenDAL's cos service uses it)
    through moto's ListObjectsV2, because moto's v1 pages only the keys and repeats every CommonPrefix on every
    page; NextMarker is the last key or prefix of a truncated page, even without a delimiter, as on COS.
  - reports when each multipart upload began in ListMultipartUploads' <Initiated> (moto reports one fixed 2010 date
    for all of them), so age-based cleanup of uploads can be tested.
  - answers UploadPart, UploadPartCopy and CompleteMultipartUpload for an upload that does not exist (never
    created, aborted, completed) with 404 NoSuchUpload, as S3 and COS do; moto itself raises a KeyError there and
    answers 500.

Multipart uploads: every part but the last must be at least --min-part-size bytes, else CompleteMultipartUpload
answers 400 EntityTooSmall: by default 5 MiB in s3 mode (S3's limit) and 1 MiB in cos mode (COS's limit).

--mode s3: a plain S3 endpoint for OpenDAL's `s3` service: endpoint http://127.0.0.1:PORT, path-style URLs
  (http://127.0.0.1:PORT/<bucket>/<key>), any region, any SigV4 credentials. moto treats a Host that is an IP
  address or starts with `localhost` as path-style.

--mode cos: the same, plus a translation of COS's dialect, so that OpenDAL's `cos` service reaches it.
  The cos service always uses virtual-host URLs, `<scheme>://<bucket>.<endpoint host>[:port]/<key>`, and signs
  with COS's own `q-sign-algorithm=sha1&...` Authorization header. The client is configured with the endpoint
  http://cos.ap-guangzhou.myqcloud.com:PORT and resolves <bucket>.cos.ap-guangzhou.myqcloud.com to
  127.0.0.1:PORT (reqwest `ClientBuilder::resolve`), so requests arrive with
  `Host: <bucket>.cos.ap-guangzhou.myqcloud.com:PORT`. What moto 5.2.5 does with that Host (read in
  moto/s3/responses.py `S3Response.subdomain_based_buckets` and moto/s3/utils.py `bucket_name_from_url`): any
  Host with a dot that is not an IP, not `localhost*` and not an `s3[.-]<region>.amazonaws.com` name is
  virtual-host style, and the bucket is the first label of the Host (`examplebucket-1250000000` for
  `examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com:PORT`); the key is the whole path. So no Host rewriting
  is needed, and no MOTO_S3_CUSTOM_ENDPOINTS either (that variable does the opposite: it forces path-style for
  the hosts it lists; this script removes it and S3_IGNORE_SUBDOMAIN_BUCKETNAME from the environment in cos mode).
  Any other domain works the same way (`<bucket>.anything.example:PORT`); a Host of 127.0.0.1 is path-style, so
  cos mode also answers path-style requests (handy for checking the store from a test).
  The middleware also translates what COS spells differently from S3, so copies and metadata behave as on COS:
    - request headers `x-cos-<name>` become `x-amz-<name>` (copy-source, copy-source-range, meta-*, acl,
      storage-class, ...), unless the x-amz one is present;
    - `x-cos-forbid-overwrite: true` becomes `If-None-Match: *` (moto then answers 412 PreconditionFailed when
      the target exists, which OpenDAL's cos service maps to ConditionNotMatch as it does COS's own answer);
      moto ignores If-None-Match on CopyObject, so the middleware checks the target itself for a copy;
    - `x-cos-metadata-directive: Replaced` / `Copy` (COS's documented values) become S3's `REPLACE` / `COPY`;
    - a copy source in COS's documented form, `<bucket>.cos.<region>.myqcloud.com/<key>` (any `<bucket>.<host>`,
      with or without `http(s)://`), becomes S3's `/<bucket>/<key>`;
    - response headers `x-amz-<name>` are also sent as `x-cos-<name>` (meta-*, version-id, ...);
    - `x-cos-hash-crc64ecma` (CRC-64/XZ, which COS calls ECMA-182, in decimal) is computed and sent as COS
      does: on PutObject and UploadPart (of the request body), on CompleteMultipartUpload (of the whole object),
      and on HEAD and GET of an object (of the whole object, also for a ranged GET). Values are cached by ETag
      (same ETag, same bytes). Pure Python, about 0.1 s per MiB the first time an object is seen; not sent on
      CopyObject / UploadPartCopy answers (HEAD the result instead).
  Not emulated: COS AppendObject (`POST ?append&position=`), COS-only APIs, COS error codes (moto answers with
  S3's: NoSuchKey, NoSuchBucket, PreconditionFailed, ...; 412 where COS answers forbid-overwrite with 409
  FileAlreadyExists), checksum validation (a wrong x-amz-checksum-* or Content-MD5 is accepted).

Facts measured about moto (see shared DESIGN.md): dir markers, UploadPartCopy, ListParts and 404s behave; ranged
GETs of large objects are slow, so keep test objects to a few MiB.
"""

import argparse
import collections
import io
import ipaddress
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

DEFAULT_ACCOUNT = "123456789012"
MIB = 1024 * 1024
PRECONDITION_FAILED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>'
    "<Message>At least one of the pre-conditions you specified did not hold</Message>"
    "<Condition>If-None-Match</Condition></Error>"
)
NO_SUCH_UPLOAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code>'
    "<Message>The specified multipart upload does not exist. The upload ID might be invalid, or the multipart "
    "upload might have been aborted or completed.</Message></Error>"
)
# Sent in place of a missing Authorization header (moto never checks it).
UNSIGNED_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


class Crc64:
    """CRC-64/XZ (COS's "crc64ecma": ECMA-182 polynomial, reflected, init and xorout all ones), slicing-by-8."""

    POLY = 0xC96C5795D7870F42
    MASK = 0xFFFFFFFFFFFFFFFF

    def __init__(self):
        t0 = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ self.POLY if c & 1 else c >> 1
            t0.append(c)
        self.tables = [t0]
        for _ in range(7):
            prev = self.tables[-1]
            self.tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])

    def __call__(self, data):
        t0, t1, t2, t3, t4, t5, t6, t7 = self.tables
        crc = self.MASK
        view = memoryview(data)
        whole = len(data) - len(data) % 8 if sys.byteorder == "little" else 0
        for word in view[:whole].cast("Q"):
            crc ^= word
            crc = (
                t7[crc & 0xFF] ^ t6[(crc >> 8) & 0xFF] ^ t5[(crc >> 16) & 0xFF] ^ t4[(crc >> 24) & 0xFF]
                ^ t3[(crc >> 32) & 0xFF] ^ t2[(crc >> 40) & 0xFF] ^ t1[(crc >> 48) & 0xFF] ^ t0[crc >> 56]
            )
        for byte in view[whole:]:
            crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ self.MASK


crc64 = Crc64()
assert crc64(b"123456789") == 0x995DC9BBDF1939FA  # the CRC-64/XZ check value


def call_app(app, environ):
    """Runs the WSGI app to the end: (status, headers, body)."""
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, list(headers)
        return lambda _data: None

    result = app(environ, capture)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return captured["status"], captured["headers"], body


def probe_environ(environ, method, query):
    """A body-less request to the same bucket and key, without the original's conditions and copy headers."""
    probe = {k: v for k, v in environ.items() if not k.startswith(("HTTP_X_AMZ_", "HTTP_X_COS_", "HTTP_IF_", "HTTP_RANGE"))}
    probe.update(REQUEST_METHOD=method, QUERY_STRING=query, CONTENT_LENGTH="0")
    probe.pop("CONTENT_TYPE", None)
    probe["wsgi.input"] = io.BytesIO(b"")
    return probe


def header(headers, name):
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


def read_exactly(stream, length):
    chunks = []
    while length > 0:
        chunk = stream.read(length)
        if not chunk:
            break
        chunks.append(chunk)
        length -= len(chunk)
    return b"".join(chunks)


class Middleware:
    """What both modes add in front of moto (see the module doc); with cos=True, the COS translation too."""

    FORBID_OVERWRITE = "HTTP_X_COS_FORBID_OVERWRITE"
    FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

    def __init__(self, app, cos):
        self.app = app
        self.cos = cos
        # Upload id → when CreateMultipartUpload answered (see `__call__`).
        self.initiated = {}

    def __call__(self, environ, start_response):
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        method = environ.get("REQUEST_METHOD")
        if "uploads" not in query or method not in ("POST", "GET"):
            return self.dispatch(environ, start_response)
        # moto reports the same `Initiated` time (2010-11-10) for every multipart upload; S3 and COS report when
        # each began, and age-based cleanup depends on it. Remember when each upload was created, and say so.
        status, headers, body = call_app(self.dispatch, environ)
        if method == "POST" and status.startswith("200"):
            for upload_id in re.findall(rb"<UploadId>([^<]*)</UploadId>", body):
                self.initiated[upload_id] = time.time()
        elif method == "GET" and status.startswith("200"):
            body = re.sub(rb"<Upload>.*?</Upload>", self.with_initiated, body, flags=re.S)
            headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(status, headers)
        return [body]

    def with_initiated(self, match):
        upload = match.group(0)
        found = re.search(rb"<UploadId>([^<]*)</UploadId>", upload)
        at = self.initiated.get(found.group(1)) if found else None
        if at is None:
            return upload
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)).encode() + b".000Z"
        return re.sub(rb"<Initiated>[^<]*</Initiated>", b"<Initiated>" + stamp + b"</Initiated>", upload)

    def dispatch(self, environ, start_response):
        # moto answers 403 to a GET of a private object by a request without Authorization (it emulates anonymous
        # access); this server ignores auth, so every request counts as signed.
        environ.setdefault("HTTP_AUTHORIZATION", UNSIGNED_AUTHORIZATION)
        # Flask would parse a PUT body sent as a form (curl --data-binary's default type) and moto would store an
        # empty object: treat it as bytes.
        if environ.get("REQUEST_METHOD") == "PUT" and environ.get("CONTENT_TYPE", "").startswith(self.FORM_TYPES):
            environ["CONTENT_TYPE"] = "application/octet-stream"
        if self.is_list_objects_v1(environ):
            return self.list_objects_v1(environ, start_response)
        if self.cos:
            self.translate_cos_request(environ)
        if self.upload_is_gone(environ):
            # Read the request body first: an answer before it, on a kept-alive connection, leaves the client's body
            # to be taken as the next request (seen as a hung test client).
            if environ.get("CONTENT_LENGTH"):
                read_exactly(environ["wsgi.input"], int(environ["CONTENT_LENGTH"]))
            body = NO_SUCH_UPLOAD.encode()
            start_response(
                "404 Not Found",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if not self.cos:
            return self.app(environ, start_response)

        if (
            environ.get("REQUEST_METHOD") == "PUT"
            and "HTTP_X_AMZ_COPY_SOURCE" in environ
            and environ.get("HTTP_IF_NONE_MATCH") == "*"
            and self.target_exists(environ)
        ):
            # moto checks If-None-Match on PUT and CompleteMultipartUpload, not on CopyObject.
            body = PRECONDITION_FAILED.encode()
            start_response(
                "412 Precondition Failed",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]

        return self.with_cos_answer(environ, start_response)

    def translate_cos_request(self, environ):
        for name in [k for k in environ if k.startswith("HTTP_X_COS_")]:
            value = environ.pop(name)
            if name == self.FORBID_OVERWRITE:
                if value.strip().lower() == "true":
                    environ.setdefault("HTTP_IF_NONE_MATCH", "*")
                continue
            environ.setdefault("HTTP_X_AMZ_" + name[len("HTTP_X_COS_"):], value)
        directive = environ.get("HTTP_X_AMZ_METADATA_DIRECTIVE")
        if directive is not None:
            environ["HTTP_X_AMZ_METADATA_DIRECTIVE"] = self.DIRECTIVES.get(directive.strip().lower(), directive)
        source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if source is not None:
            environ["HTTP_X_AMZ_COPY_SOURCE"] = self.s3_copy_source(source)

    DIRECTIVES = {"replaced": "REPLACE", "copy": "COPY"}

    @staticmethod
    def s3_copy_source(value):
        """COS's `<bucket>.<region host>/<key>` (maybe with a scheme) as S3's `/<bucket>/<key>`."""
        rest = value.strip()
        for scheme in ("http://", "https://"):
            if rest.startswith(scheme):
                rest = rest[len(scheme):]
        if rest.startswith("/"):
            return value
        host, _, key = rest.partition("/")
        if "." not in host:
            return value
        return "/" + host.split(".", 1)[0] + "/" + key

    def upload_is_gone(self, environ):
        """A part upload or completion for an upload moto does not know (moto would answer 500)."""
        if environ.get("REQUEST_METHOD") not in ("PUT", "POST"):
            return False
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        upload_id = query.get("uploadId", [""])[0]
        if not upload_id:
            return False
        probe = probe_environ(environ, "GET", urllib.parse.urlencode({"uploadId": upload_id, "max-parts": "1"}))
        status, _headers, body = call_app(self.app, probe)
        return status.startswith("404") and b"NoSuchUpload" in body

    def with_cos_answer(self, environ, start_response):
        """The app's answer with COS's response headers: x-cos-* copies of x-amz-*, x-cos-hash-crc64ecma."""
        method = environ.get("REQUEST_METHOD")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        request_body = None
        if method == "PUT" and "HTTP_X_AMZ_COPY_SOURCE" not in environ and environ.get("CONTENT_LENGTH"):
            request_body = read_exactly(environ["wsgi.input"], int(environ["CONTENT_LENGTH"]))
            environ["wsgi.input"] = io.BytesIO(request_body)
        status, headers, body = call_app(self.app, environ)

        crc = None
        if status.startswith("200") and request_body is not None:
            crc = crc64(request_body)
            self.remember_crc(header(headers, "ETag"), crc)
        elif status.startswith("200") and method == "POST" and "uploadId" in query and b"<Error>" not in body:
            crc = self.object_crc(environ, None)
        elif status[:3] in ("200", "206") and method in ("GET", "HEAD") and self.is_object_read(environ, query):
            whole = body if method == "GET" and status.startswith("200") else None
            crc = self.object_crc(environ, header(headers, "ETag"), whole)

        extra = [("x-cos-" + k[len("x-amz-"):], v) for k, v in headers if k.lower().startswith("x-amz-")]
        if crc is not None:
            extra.append(("x-cos-hash-crc64ecma", str(crc)))
        start_response(status, list(headers) + extra)
        return [body]

    OBJECT_READ_PARAMS = {"versionId"}

    def is_object_read(self, environ, query):
        """A HEAD/GET of an object (not of a bucket, not a subresource such as ?uploadId= or ?acl)."""
        if any(k not in self.OBJECT_READ_PARAMS and not k.startswith("response-") for k in query):
            return False
        path = environ.get("PATH_INFO", "").strip("/")
        if self.is_path_style(environ.get("HTTP_HOST", "")):
            return "/" in path
        return path != ""

    crc_cache = collections.OrderedDict()
    crc_cache_lock = threading.Lock()
    CRC_CACHE_SIZE = 4096

    def remember_crc(self, etag, crc):
        if not etag:
            return
        with self.crc_cache_lock:
            self.crc_cache[etag] = crc
            self.crc_cache.move_to_end(etag)
            while len(self.crc_cache) > self.CRC_CACHE_SIZE:
                self.crc_cache.popitem(last=False)

    def object_crc(self, environ, etag, whole=None):
        """The CRC-64 of the object the request names: cached by ETag, else of `whole`, else read whole."""
        if etag:
            with self.crc_cache_lock:
                if etag in self.crc_cache:
                    return self.crc_cache[etag]
        if whole is None:
            status, headers, whole = call_app(self.app, probe_environ(environ, "GET", ""))
            if not status.startswith("200"):
                return None
            etag = header(headers, "ETag")
        crc = crc64(whole)
        self.remember_crc(etag, crc)
        return crc

    def target_exists(self, environ):
        probe = {k: v for k, v in environ.items() if not k.startswith(("HTTP_X_AMZ_", "HTTP_IF_"))}
        probe.update(REQUEST_METHOD="HEAD", QUERY_STRING="", CONTENT_LENGTH="0")
        probe["wsgi.input"] = io.BytesIO(b"")
        status = []
        result = self.app(probe, lambda st, _headers, _exc=None: status.append(st) or (lambda _data: None))
        try:
            for _ in result:
                pass
        finally:
            if hasattr(result, "close"):
                result.close()
        return bool(status) and status[0].startswith("200")

    V1_LIST_PARAMS = {"prefix", "delimiter", "marker", "max-keys", "encoding-type"}

    @staticmethod
    def is_path_style(host):
        """moto's rule (S3Response.subdomain_based_buckets), for the hosts tests use."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]")
        if not name or name.startswith("localhost") or "." not in name and ":" not in name:
            return True
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return False

    def is_list_objects_v1(self, environ):
        if environ.get("REQUEST_METHOD") != "GET":
            return False
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if not set(query) <= self.V1_LIST_PARAMS:
            return False
        path = environ.get("PATH_INFO", "")
        if self.is_path_style(environ.get("HTTP_HOST", "")):
            return path.strip("/") != "" and "/" not in path.strip("/")
        return path == "/"

    def list_objects_v1(self, environ, start_response):
        """ListObjects (v1) answered from moto's ListObjectsV2, converted back to the v1 XML.

        moto's own v1 listing truncates only the keys: every page repeats all the CommonPrefixes, so a paged
        listing of a directory with subdirectories shows duplicates. Its v2 listing pages keys and prefixes
        together, as S3 and COS do. NextMarker is the last key or prefix of a truncated page (COS always sends it
        when IsTruncated; OpenDAL's cos lister stops without it); an incoming marker becomes start-after.
        """
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        marker = query.pop("marker", [""])[0]
        v2 = {k: v[0] for k, v in query.items()}
        v2["list-type"] = "2"
        v2["fetch-owner"] = "true"
        if marker:
            v2["start-after"] = marker
        inner = dict(environ)
        inner["QUERY_STRING"] = urllib.parse.urlencode(v2, quote_via=urllib.parse.quote)

        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        result = self.app(inner, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = captured["status"], captured["headers"]
        if not status.startswith("200"):
            start_response(status, headers)
            return [body]

        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        root = ET.fromstring(body)

        def text(elem, name, default=""):
            found = elem.find(ns + name)
            return found.text or default if found is not None else default

        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
        out.append(f"<Name>{escape(text(root, 'Name'))}</Name>")
        out.append(f"<Prefix>{escape(text(root, 'Prefix'))}</Prefix>")
        out.append(f"<Marker>{escape(marker)}</Marker>")
        out.append(f"<MaxKeys>{escape(text(root, 'MaxKeys'))}</MaxKeys>")
        if root.find(ns + "Delimiter") is not None:
            out.append(f"<Delimiter>{escape(text(root, 'Delimiter'))}</Delimiter>")
        truncated = text(root, "IsTruncated") == "true"
        out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        names = []
        contents = []
        for c in root.findall(ns + "Contents"):
            key = text(c, "Key")
            names.append(key)
            part = [f"<Key>{escape(key)}</Key>"]
            for field in ("LastModified", "ETag", "Size", "StorageClass"):
                part.append(f"<{field}>{escape(text(c, field))}</{field}>")
            owner = c.find(ns + "Owner")
            if owner is not None:
                part.append(
                    f"<Owner><ID>{escape(text(owner, 'ID'))}</ID>"
                    f"<DisplayName>{escape(text(owner, 'DisplayName'))}</DisplayName></Owner>"
                )
            contents.append("<Contents>" + "".join(part) + "</Contents>")
        prefixes = []
        for cp in root.findall(ns + "CommonPrefixes"):
            prefix = text(cp, "Prefix")
            names.append(prefix)
            prefixes.append(f"<CommonPrefixes><Prefix>{escape(prefix)}</Prefix></CommonPrefixes>")
        if truncated and names:
            out.append(f"<NextMarker>{escape(max(names))}</NextMarker>")
        out.extend(contents)
        out.extend(prefixes)
        if root.find(ns + "EncodingType") is not None:
            out.append(f"<EncodingType>{escape(text(root, 'EncodingType'))}</EncodingType>")
        out.append("</ListBucketResult>")
        data = "".join(out).encode("utf-8")
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(data))))
        start_response(status, headers)
        return [data]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["s3", "cos"], required=True)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one (default)")
    parser.add_argument("--buckets", default="", help="comma-separated bucket names to create at start")
    parser.add_argument(
        "--min-part-size",
        type=int,
        default=None,
        help="smallest non-last multipart part accepted (default: 5 MiB in s3 mode as on S3, 1 MiB in cos mode as on COS)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--ignore-stdin", action="store_true", help="do not exit at EOF on stdin")
    args = parser.parse_args()

    os.environ.setdefault("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT)
    min_part = args.min_part_size or (MIB if args.mode == "cos" else 5 * MIB)
    os.environ["S3_UPLOAD_PART_MIN_SIZE"] = str(min_part)  # read by moto.settings at import
    if args.mode == "cos":
        os.environ.pop("MOTO_S3_CUSTOM_ENDPOINTS", None)
        os.environ.pop("S3_IGNORE_SUBDOMAIN_BUCKETNAME", None)

    try:
        from moto.server import create_backend_app
        from werkzeug.serving import make_server
    except ImportError as e:
        print(f"MISSING {e} (python {sys.executable})", flush=True)
        sys.exit(3)

    verbose = args.verbose or os.environ.get("COSFTPD_S3_VERBOSE") == "1"
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.ERROR)

    app = create_backend_app("s3")
    wsgi = Middleware(app, cos=args.mode == "cos")

    client = app.test_client()
    for bucket in filter(None, (b.strip() for b in args.buckets.split(","))):
        resp = client.put(f"/{bucket}", headers={"Host": "localhost"})
        if resp.status_code != 200:
            print(f"creating bucket {bucket}: HTTP {resp.status_code} {resp.data!r}", file=sys.stderr)
            sys.exit(1)

    server = make_server("127.0.0.1", args.port, wsgi, threaded=True)
    threading.Thread(target=server.serve_forever, name="s3-server", daemon=True).start()

    def on_signal(signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print(f"READY {server.server_port}", flush=True)
    if verbose:
        print(f"s3_server: mode={args.mode} listening on 127.0.0.1:{server.server_port}", file=sys.stderr)

    try:
        if args.ignore_stdin:
            threading.Event().wait()
        else:
            while sys.stdin.buffer.read(65536):
                pass
    except SystemExit:
        pass
    # Don't wait for in-flight requests: the parent is gone or asked us to stop.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
