"""``montage serve``: a plain static file server for viewing outputs through an SSH tunnel."""

import functools
import ipaddress
import os
import socket
import sys
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import MontageError


class _Handler(SimpleHTTPRequestHandler):
    """GET and HEAD of regular files inside the folder: no listings, no dotfiles, no way out."""

    def log_message(self, format, *args):   # one line per request would drown the URL
        pass

    def translate_path(self, path):
        """The real path of the regular file that URL ``path`` names, or "" for none.

        A URL ending in "/" names that directory's ``index.html``. Symlinks are
        followed, but only to targets inside the served folder.
        """
        path = path.split("?", 1)[0].split("#", 1)[0]
        try:
            words = urllib.parse.unquote(path, errors="strict").split("/")
        except UnicodeDecodeError:
            return ""
        words = [w for w in words if w]
        # "." and ".." start with a dot too; NUL and a second separator make no file name
        if any(w.startswith(".") or "\0" in w or (os.altsep and os.altsep in w) for w in words):
            return ""
        if path.endswith("/"):
            words.append("index.html")
        root = self.directory
        try:
            real = os.path.realpath(os.path.join(root, *words))
            rel = Path(real).relative_to(root)
        except (OSError, ValueError):
            return ""
        # the real path is checked too: a symlink may lead into a dot-directory
        if any(p.startswith(".") for p in rel.parts):
            return ""
        return real if os.path.isfile(real) else ""

    def send_head(self):   # GET and HEAD
        if not self.translate_path(self.path):   # said here, not left to open("") failing
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):   # unreachable while translate_path names only files
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None


class _Server(ThreadingHTTPServer):
    def __init__(self, address, handler, family):
        self.address_family = family   # read when the socket is made, so set before
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # a browser that drops a tile request half-way is routine, not worth a traceback
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _printable(text, stream):
    """``text`` (a path perhaps holding undecodable bytes) as ``stream`` can write it."""
    text = os.fsencode(text).decode(sys.getfilesystemencoding(), "backslashreplace")
    encoding = getattr(stream, "encoding", None) or "ascii"
    return text.encode(encoding, "backslashreplace").decode(encoding)


def make_server(folder, host="127.0.0.1", port=8000):
    """A ready HTTP server for ``folder`` (not yet serving); port 0 picks a free one.

    ``host`` may be an IPv4 or IPv6 address or a host name; "" means every interface.
    """
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise MontageError(f"{folder} has no index.html: give a folder that montage wrote")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise MontageError(f"port {port!r} is not a number: give --port 0 to 65535") from None
    if not 0 <= port <= 65535:
        raise MontageError(f"port {port} is out of range: give --port 0 to 65535 (0 picks a free one)")
    try:
        family, _, _, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    except (OSError, ValueError):   # ValueError: a NUL, or no IDNA form
        raise MontageError(f"cannot resolve host {host!r}: give an address such as 127.0.0.1 "
                           "or ::1, or a known host name") from None
    handler = functools.partial(_Handler, directory=os.path.realpath(folder))
    try:
        return _Server(address, handler, family)
    except OSError as e:
        raise MontageError(f"cannot serve on {host}:{port} ({e.strerror or e}): pick another --port "
                           "or --host") from None


def serve(folder, host="127.0.0.1", port=8000):
    """Serve ``folder`` until Ctrl-C. Binds to this machine only unless ``host`` says otherwise."""
    server = make_server(folder, host, port)
    h, p = server.server_address[:2]
    if not _is_loopback(host):
        print(f"montage: warning: serving on {_printable(host, sys.stderr)}, reachable from other "
              f"machines: anyone on the network can read {_printable(str(folder), sys.stderr)}; "
              "the default 127.0.0.1 with an SSH tunnel is safer", file=sys.stderr)
    shown = f"[{h}]" if ":" in h else h
    print(f"Serving {_printable(str(folder), sys.stdout)} at http://{shown}:{p}/ (Ctrl-C to stop)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("montage: stopped", file=sys.stderr)
    finally:
        server.server_close()
