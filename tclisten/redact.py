"""What may be shown of a URL: never a password, an access token or a bewit.

One owner for every place a URL can appear (reprs, log lines, errors, metric labels), for
one URL or a failover list (kombu's ``;``-separated form, or a Python list).

>>> scrub_url("amqps://me:s3cret@pulse.mozilla.org:5671/")
'amqps://me:****@pulse.mozilla.org:5671/'
>>> scrub_url("amqp://a:x@n1:5672//;amqp://a:y@n2:5672//")
'amqp://a:****@n1:5672//;amqp://a:****@n2:5672//'
>>> scrub_url("https://tc.example.com/api/queue/v1/task/x?bewit=abc&limit=3")
'https://tc.example.com/api/queue/v1/task/x?limit=3'
"""

from __future__ import annotations

import urllib.parse
from typing import Iterable

__all__ = ["scrub_url", "scrub_urls", "split_urls"]

SECRET_QUERY_KEYS = ("bewit",)


def split_urls(urls: str | Iterable[str]) -> list[str]:
    """The URLs of a failover list: kombu's ``url1;url2`` text, or any iterable of URLs."""
    items = urls.split(";") if isinstance(urls, str) else list(urls)
    return [item.strip() for item in items if item and item.strip()]


def _scrub_one(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # not even a URL (a bad port, say): show nothing of what follows '@'
        return url.rsplit("@", 1)[-1] if "@" in url else url
    if password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username}:****@{host}")
    if parts.query and any(f"{key}=" in parts.query for key in SECRET_QUERY_KEYS):
        kept = [q for q in parts.query.split("&") if q.split("=", 1)[0] not in SECRET_QUERY_KEYS]
        parts = parts._replace(query="&".join(kept))
    return urllib.parse.urlunsplit(parts)


def scrub_url(url: str | Iterable[str] | None) -> str:
    """A URL, or a failover list of them, safe to show (``;``-joined for a list)."""
    if url is None:
        return ""
    return ";".join(_scrub_one(item) for item in split_urls(url))


def scrub_urls(urls: str | Iterable[str]) -> list[str]:
    """Each URL of a failover list, safe to show."""
    return [_scrub_one(item) for item in split_urls(urls)]
