"""``montage serve``: a plain static file server for viewing outputs through an SSH tunnel."""

import functools
import ipaddress
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import MontageError


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):   # one line per request would drown the URL
        pass


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def make_server(folder, host="127.0.0.1", port=8000):
    """A ready HTTP server for ``folder`` (not yet serving); port 0 picks a free one."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise MontageError(f"{folder} has no index.html: give a folder that montage wrote")
    handler = functools.partial(_Quiet, directory=str(folder.resolve()))
    try:
        return ThreadingHTTPServer((host, int(port)), handler)
    except OSError as e:
        raise MontageError(f"cannot serve on {host}:{port} ({e.strerror}): pick another --port "
                           "or --host") from None


def serve(folder, host="127.0.0.1", port=8000):
    """Serve ``folder`` until Ctrl-C. Binds to this machine only unless ``host`` says otherwise."""
    server = make_server(folder, host, port)
    h, p = server.server_address[:2]
    if not _is_loopback(host):
        print(f"montage: warning: serving on {host}, reachable from other machines; "
              "the default 127.0.0.1 with an SSH tunnel is safer", file=sys.stderr)
    shown = f"[{h}]" if ":" in h else h
    print(f"Serving {folder} at http://{shown}:{p}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("montage: stopped", file=sys.stderr)
    finally:
        server.server_close()
