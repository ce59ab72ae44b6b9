"""python-telegram-bot's HTTP layer on aiohttp instead of httpx.

Why: with many requests in flight, httpx's connection pool collapses — on this project's
2-core machine, 64 concurrent ``sendMessage`` calls to the same local server run at about 120
requests/s with httpx against about 3,500 with aiohttp (``python -m bot bench`` measures the
bot, which sends check-ins and replies to many patients at once). httpcore checks every pooled
connection for readability on each request, which costs O(connections) system calls per request.

The contract is PTB's :class:`~telegram.request.BaseRequest`: same timeouts, and failures mapped
to ``TimedOut`` / ``NetworkError`` exactly as PTB's own ``HTTPXRequest`` does, so retries and the
sender's error mapping are unchanged. Proxies as with PTB's stock transport: ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY`` from the environment (most hospital networks reach the internet
only through one), or an explicit ``proxy`` (TELEGRAM_PROXY_URL), which wins over them.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


def _given(value: object, default: float | None) -> float | None:
    """A timeout PTB passed explicitly, else ours: PTB marks "not given" with a default-value
    sentinel (``BaseRequest.DEFAULT_NONE`` or another of its kind), never a number or None."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    return default


class AiohttpRequest(BaseRequest):
    """A PTB request backend on one ``aiohttp.ClientSession``."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 128,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._proxy = proxy
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds the long-poll time to it for getUpdates)."""
        return self._read

    async def initialize(self) -> None:
        """Open the session (on the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                trust_env=self._trust_env,  # HTTPS_PROXY, HTTP_PROXY, NO_PROXY
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
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
        """Send one Bot API request; returns (status, body) for PTB to decode."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = _given(read_timeout, self._read)
        connect = _given(connect_timeout, self._connect)
        pool = _given(pool_timeout, self._pool)
        write = _given(write_timeout, self._media_write if files else self._write)
        # aiohttp's "connect" covers waiting for a pooled connection and opening one.
        acquire = None if connect is None or pool is None else connect + pool
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=acquire,
            sock_connect=connect,
            sock_read=None if read is None or write is None else max(read, write),
        )
        body: Any = None
        if request_data is not None:
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mime) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mime)
                body = form
            else:
                body = request_data.json_parameters
        try:
            async with self._session.request(
                method, url, data=body, timeout=timeout, proxy=self._proxy
            ) as resp:
                return resp.status, await resp.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
