"""The stack's moto dispatcher answers as moto's does, looking each host up once (its
pins: test_moto_pins)."""

from __future__ import annotations

import pytest
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from workflow.local import dispatch

HOSTS = [
    None,
    "moto_api",
    "127.0.0.1:5000",
    "localhost",
    "s3",
    "s3.us-east-1.amazonaws.com",
    "bucket.s3.amazonaws.com",
    "states.eu-west-1.amazonaws.com",
    "logs.us-east-1.amazonaws.com",
    "example.org",
]


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often moto lists its package folder."""
    count = [0]
    listing = backends.list_of_moto_modules

    def counted() -> list[str]:
        count[0] += 1
        return list(listing())

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    return count


def test_it_names_the_backend_moto_names_for_every_host(listings: list[int]) -> None:
    moto_app = DomainDispatcherApplication(create_backend_app)
    ours = dispatch.dispatcher()
    for _ in range(2):
        assert [ours.get_backend_for_host(h) for h in HOSTS] == [
            moto_app.get_backend_for_host(h) for h in HOSTS
        ]


def test_a_host_is_looked_up_once(listings: list[int]) -> None:
    ours = dispatch.dispatcher()
    first = [ours.get_backend_for_host(h) for h in HOSTS]
    looked = listings[0]
    assert looked > 0
    assert [ours.get_backend_for_host(h) for h in HOSTS * 3] == first * 3
    assert listings[0] == looked


def test_hosts_past_the_bound_are_looked_up_each_time(
    listings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hosts come from requests' headers: a client inventing them cannot grow it for ever.
    monkeypatch.setattr(dispatch, "KEPT_HOSTS", 2)
    ours = dispatch.dispatcher()
    for host in ("s3", "sqs", "127.0.0.1:1", "127.0.0.1:2"):
        assert ours.get_backend_for_host(host) == DomainDispatcherApplication(
            create_backend_app
        ).get_backend_for_host(host)
    assert len(ours.backends) == 2
    looked = listings[0]
    assert ours.get_backend_for_host("127.0.0.1:2") is None
    assert listings[0] == looked + 1
