#!/usr/bin/env python3
"""The benchmark's video source: a static file server on loopback that supports Range and
counts the bytes it sends.

    source_server.py --dir DIR [--port 0] [--port-file FILE]

Prints its port on the first line of stdout (and into --port-file when given).

Routes
  GET/HEAD /NAME            the file DIR/NAME, with `Accept-Ranges: bytes` and single-range
                            `Range: bytes=a-b | a- | -n` support (206 / 416)
  GET/HEAD /norange/NAME    the same file as a server WITHOUT Range support: no Accept-Ranges,
                            a Range header is ignored and the whole file comes back with 200
  GET /__stats              JSON {tag: {"bytes", "requests", "ranges": [...first 50...]}}
  POST /__reset             clears the counters

Counting: each request is attributed to the value of its `r` query parameter (the "tag"; the
benchmark gives every run its own URL `...?r=TAG`, which also keeps the service from reusing a
staged source). `bytes` counts body bytes handed to the kernel (os.sendfile). When a client
hangs up early the count can exceed what it read by at most the loopback socket buffers; the
send buffer is kept small (256 KiB) to bound that.
"""

import argparse
import http.server
import json
import os
import re
import socket
import sys
import threading
import urllib.parse

LOCK = threading.Lock()
STATS = {}
CHUNK = 1 << 20
SNDBUF = 256 * 1024


def account(tag, nbytes=0, request=None):
    with LOCK:
        s = STATS.setdefault(tag, {"bytes": 0, "requests": 0, "ranges": []})
        s["bytes"] += nbytes
        if request is not None:
            s["requests"] += 1
            if len(s["ranges"]) < 50:
                s["ranges"].append(request)


def parse_range(header, size):
    """(start, end_inclusive) for a satisfiable single range, 'bad' for an unsatisfiable one,
    None for no/unsupported Range (serve the whole file)."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # multi-range or garbage: serve it whole, as RFC 9110 allows
    a, b = m.group(1), m.group(2)
    if a == "":
        n = int(b)
        if n == 0:
            return "bad"
        return (max(0, size - n), size - 1)
    start = int(a)
    end = size - 1 if b == "" else min(int(b), size - 1)
    if start >= size or end < start:
        return "bad"
    return (start, end)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bench-source/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        except OSError:
            pass

    def _json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.path.startswith("/__reset"):
            with LOCK:
                STATS.clear()
            return self._json(200, {"ok": True})
        self._json(404, {"error": "not found"})

    def do_GET(self):
        self._serve(head=False)

    def do_HEAD(self):
        self._serve(head=True)

    def _serve(self, head):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__stats":
            with LOCK:
                snapshot = json.loads(json.dumps(STATS))
            return self._json(200, snapshot)
        tag = urllib.parse.parse_qs(url.query).get("r", [""])[0]
        path = urllib.parse.unquote(url.path)
        ranged = True
        if path.startswith("/norange/"):
            ranged = False
            path = path[len("/norange"):]
        name = path.lstrip("/")
        if not name or "/" in name or name.startswith("."):
            return self._json(404, {"error": "not found"})
        full = os.path.join(self.server.root, name)
        try:
            f = open(full, "rb")
        except OSError:
            return self._json(404, {"error": "not found"})
        with f:
            size = os.fstat(f.fileno()).st_size
            rng = parse_range(self.headers.get("Range"), size) if ranged else None
            account(tag, 0, f"{self.command} {self.headers.get('Range') or '-'}")
            if rng == "bad":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if rng is None:
                start, end, code = 0, size - 1, 200
            else:
                (start, end), code = rng, 206
            length = end - start + 1 if size else 0
            self.send_response(code)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(length))
            if ranged:
                self.send_header("Accept-Ranges", "bytes")
            if code == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if head or length == 0:
                return
            self.wfile.flush()
            out = self.connection.fileno()
            offset, remaining = start, length
            try:
                while remaining > 0:
                    n = os.sendfile(out, f.fileno(), offset, min(CHUNK, remaining))
                    if n == 0:
                        break
                    offset += n
                    remaining -= n
                    account(tag, n)
            except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
                self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.root = os.path.abspath(args.dir)
    port = srv.server_address[1]
    print(port, flush=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as fh:
            fh.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
