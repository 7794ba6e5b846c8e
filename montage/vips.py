"""pyvips, imported on first use, with GLib's own warnings kept off the terminal.

pyvips routes libvips' log domain ('VIPS') to Python's logging; GLib's domains are not, so a
bad file can print a ``GLib-GObject-CRITICAL`` line to stderr before montage's one line.
They go to the same logger here (silent unless the user configures logging).
"""

import atexit

_DOMAINS = (b"GLib", b"GLib-GObject", b"GModule")
_handlers = []


def vips():
    """The ``pyvips`` module, with GLib's log domains routed to pyvips' logger."""
    import pyvips

    if not _handlers:
        flags = pyvips.GLogLevelFlags
        levels = (flags.LEVEL_DEBUG | flags.LEVEL_INFO | flags.LEVEL_MESSAGE | flags.LEVEL_WARNING
                  | flags.LEVEL_CRITICAL)
        for domain in _DOMAINS:
            _handlers.append((domain, pyvips.glib_lib.g_log_set_handler(domain, levels, pyvips._log_handler_cb,
                                                                        pyvips.ffi.NULL)))
        remove = pyvips.glib_lib.g_log_remove_handler   # looked up now: not at shutdown
        atexit.register(lambda: [remove(d, h) for d, h in _handlers])
    return pyvips
