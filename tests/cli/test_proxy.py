"""The bot's Bot API traffic goes through the hospital's proxy: ``HTTP(S)_PROXY`` / ``NO_PROXY``
from the environment, or ``TELEGRAM_PROXY_URL``. The Bot API address is a name only the proxy
resolves, so a request that bypassed the proxy could not reach the fake server at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.sandbox.fake_api import FakeTelegramServer
from tests.cli.test_doctor import env_for, migrated, schedules, server  # noqa: F401 - fixtures
from tests.test_cli import run_cli

#: Resolved by the proxy only (``.invalid`` never resolves in DNS).
HIDDEN_HOST = "telegram.invalid"


class CountingProxy:
    """A forward HTTP proxy on loopback that counts the Bot API requests it carries."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.methods: list[str] = []
        self._runner: web.ServerRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        self._client = aiohttp.ClientSession()
        low_level = web.Server(self._forward)
        self._runner = web.ServerRunner(low_level)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def _forward(self, request: web.BaseRequest) -> web.StreamResponse:
        """Absolute-form request line (``POST http://host/bot.../getMe``): forward it."""
        assert self._client is not None
        if request.url.host != HIDDEN_HOST:
            return web.Response(status=502, text=f"unknown host {request.url.host}")
        self.methods.append(request.url.path.rsplit("/", 1)[-1])
        target = request.url.with_host("127.0.0.1").with_port(self.target_port)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "proxy-connection")
        }
        async with self._client.request(
            request.method, target, headers=headers, data=await request.read()
        ) as answer:
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )


@pytest.fixture
async def proxy(server: FakeTelegramServer) -> AsyncIterator[CountingProxy]:  # noqa: F811
    counting = CountingProxy(server.port)
    await counting.start()
    yield counting
    await counting.stop()


def hidden_env(
    server: FakeTelegramServer,  # noqa: F811
    tmp_path: Path,
    schedules: Path,  # noqa: F811
) -> dict[str, str]:
    env = env_for(server, tmp_path, schedules)
    env["TELEGRAM_API_BASE_URL"] = f"http://{HIDDEN_HOST}:{server.port}/bot"
    return env


@pytest.mark.parametrize("how", ["HTTP_PROXY", "TELEGRAM_PROXY_URL"])
async def test_the_bot_api_traffic_goes_through_the_proxy(
    server: FakeTelegramServer,  # noqa: F811
    proxy: CountingProxy,
    tmp_path: Path,
    schedules: Path,  # noqa: F811
    how: str,
) -> None:
    env = hidden_env(server, tmp_path, schedules)
    await migrated(env)
    env[how] = proxy.url
    result = await asyncio.to_thread(run_cli, "doctor", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert sorted(proxy.methods) == sorted(name for name, _ in server.request_log)
    assert {"getMe", "getChat", "getChatMember"} <= set(proxy.methods)
    assert len(proxy.methods) == 5  # getMe, then getChat + getChatMember for each of two chats


async def test_no_proxy_is_honoured(
    server: FakeTelegramServer,  # noqa: F811
    proxy: CountingProxy,
    tmp_path: Path,
    schedules: Path,  # noqa: F811
) -> None:
    env = hidden_env(server, tmp_path, schedules)
    env.update(HTTP_PROXY=proxy.url, NO_PROXY=HIDDEN_HOST)
    result = await asyncio.to_thread(run_cli, "doctor", cwd=tmp_path, **env)
    assert result.returncode == 2
    assert "error: TELEGRAM_API_BASE_URL: cannot reach" in result.stderr
    assert proxy.methods == []


def test_a_socks_proxy_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run_cli("doctor", cwd=tmp_path, TELEGRAM_PROXY_URL="socks5://127.0.0.1:1080")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: TELEGRAM_PROXY_URL is invalid: expected an http:// proxy URL like "
        "http://proxy.example:3128 (socks is not supported: use an HTTP proxy), or empty"
    ]
