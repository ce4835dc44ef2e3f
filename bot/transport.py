"""python-telegram-bot's requests to the Bot API, over aiohttp.

Why not python-telegram-bot's own HTTPXRequest: a request through httpx
(and httpcore, h11 and anyio under it) cost about 2 ms of CPU on the
benchmark's machine, the same request through aiohttp (its HTTP parser is
C) about 0.8 ms, measured against one local server. The bot sends a lot:
`/tugas` a message per task, `/status` one per open run, the outbox every
reminder; the HTTP client was a third of the time of an update. aiohttp is
already a dependency (the built-in Bot API server, the training room).

What the bot relies on behaves as with HTTPXRequest:

- the same timeouts: connect 5 s, read 5 s, write 5 s (20 s with a file),
  1 s to wait for a free connection; a call's own timeouts win (the long
  poll's read timeout); a file up or down takes as long as it takes while
  data keeps coming;
- a timeout raises TimedOut, any other failure to talk to the server
  NetworkError (the outbox retries both, jobs/outbox.py);
- parameters go form-encoded, with files as multipart/form-data, file
  names as they are (not percent-encoded: Telegram shows them);
- a proxy from the environment (HTTPS_PROXY, NO_PROXY) is used, read once
  per host (aiohttp's own trust_env reads it, and ~/.netrc, in a thread on
  every request: that hand-off cost more than the request);
- one TLS context for every client of the process.
"""

from __future__ import annotations

import functools
import ssl
import urllib.request
from urllib.parse import urlencode, urlsplit

import aiohttp
import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

CONNECT = 5.0
READ = 5.0
WRITE = 5.0
WRITE_WITH_FILES = 20.0
POOL = 1.0
FORM = "application/x-www-form-urlencoded"


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every HTTP client of the process, as httpx makes
    it (certifi's CA bundle, SSL_CERT_FILE and SSL_CERT_DIR honoured):
    loading the CA certificates takes about 60 ms, and an Application has
    two clients (its requests and getUpdates)."""
    return httpx.create_ssl_context()


@functools.cache
def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for this scheme, unless NO_PROXY
    names the host; read once per host (`proxy_for.cache_clear()` to read
    the environment again)."""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def _given(value: object, default: float | None) -> float | None:
    """A call's own timeout, or ours when it gave none (python-telegram-bot
    passes its DEFAULT_NONE then)."""
    if value is BaseRequest.DEFAULT_NONE:
        return default
    if value is None:
        return None
    assert isinstance(value, int | float), value
    return float(value)


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a pool of `pool` connections, opened by
    initialize (it needs the running loop) and closed by shutdown."""

    __slots__ = ("_pool", "_session")

    def __init__(self, pool: int) -> None:
        self._pool = pool
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The read timeout of a call that gives none (python-telegram-bot
        adds the long poll's own to it for getUpdates)."""
        return READ

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool, ssl=tls()),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = bool(request_data and request_data.contains_files)
        read = _given(read_timeout, READ)
        write = _given(write_timeout, WRITE_WITH_FILES if files else WRITE)
        connect = _given(connect_timeout, CONNECT)
        pool = _given(pool_timeout, POOL)
        parts = (read, write, connect, pool)
        # aiohttp has no write timeout and its read timeout is between two
        # reads: a call (a small request, a small answer) is bounded by the
        # sum of the four. A file going up or coming down is not, as with
        # httpx: each read waits at most the read timeout, however long
        # the whole file takes on a slow line.
        bounded = not files and method != "GET" and None not in parts
        timeout = aiohttp.ClientTimeout(
            total=sum(p for p in parts if p is not None) if bounded else None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        where = urlsplit(url)
        try:
            async with self._session.request(
                method,
                url,
                data=_body(request_data),
                timeout=timeout,
                proxy=proxy_for(where.scheme, where.hostname or ""),
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise TimedOut(f"aiohttp: {type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _body(request_data: RequestData | None) -> aiohttp.FormData | aiohttp.BytesPayload | None:
    """The parameters form-encoded (each value JSON, as python-telegram-bot
    encodes them), multipart when there are files. Without files the body
    is encoded here: aiohttp's FormData did the same encoding at twice the
    cost, and nearly every request is a message without a file."""
    if request_data is None:
        return None
    if not request_data.contains_files:
        return aiohttp.BytesPayload(
            urlencode(request_data.json_parameters).encode(), content_type=FORM
        )
    form = aiohttp.FormData(request_data.json_parameters, quote_fields=False)
    for name, (filename, content, mime) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime)
    return form
