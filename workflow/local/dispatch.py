"""moto's request dispatch, with the backend each host names looked up once.

For every request, moto 5.2.5's ``DomainDispatcherApplication.get_backend_for_host`` lists
moto's own package folder (174 entries, an ``isdir`` each) to see whether the host is a
service's name, and does so twice for a request to ``127.0.0.1:<port>`` (once for the
host, once for the host it then infers from the signature): 0.8 ms a request, under the
lock every request thread takes. A 60 s 1080p ``vidflow process`` makes about 450
requests: 0.9 s of the stack's process, on the same CPUs as the encoders.

The answer depends on the host string alone (the folder and moto's URL patterns do not
change while it runs), so ``dispatcher`` gives moto's application with each host's answer
kept after its first lookup. Hosts come from requests' headers, so at most ``KEPT_HOSTS``
of them are kept; others are looked up each time, as before. Like the other patches, it
first checks that moto's lookup is the code this was written for, and the engine refuses
to start on another.
"""

from __future__ import annotations

from typing import Any

from workflow.local.moto_pins import check_pinned

# sha256 (first 16 hex digits) of the source of the moto function whose answers are kept.
EXPECTED_SOURCES = {"DomainDispatcherApplication.get_backend_for_host": "1f41972c1e4e660f"}

# The most hosts whose backend is kept: the stack's clients use a handful.
KEPT_HOSTS = 256


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this was read on."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    check_pinned(
        "the dispatch patch (workflow/local/dispatch.py)",
        {"DomainDispatcherApplication.get_backend_for_host": (
            DomainDispatcherApplication.get_backend_for_host
        )},
        EXPECTED_SOURCES,
    )  # fmt: skip


def dispatcher() -> Any:
    """moto's WSGI application for all its services, as the moto server makes it, but
    answering which backend a host names from memory after the first time."""
    check()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            # moto calls the lookup holding self.lock: the dict needs no lock of its own.
            self.backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host in self.backends:
                return self.backends[host]
            backend = super().get_backend_for_host(host)
            if len(self.backends) < KEPT_HOSTS:
                self.backends[host] = backend
            return backend

    return Dispatcher()
