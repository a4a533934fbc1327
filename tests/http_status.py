"""The HTTP status a local server answers a GET with, whatever it is."""

from __future__ import annotations

import urllib.error
import urllib.request


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code
