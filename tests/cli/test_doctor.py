"""``doctor`` against the fake Telegram server: a healthy production configuration passes, and
each problem injected in turn is named, one line, by its setting; ``run`` refuses to start on
any problem that would lose an alert; ``enroll`` prints the bot's real @username."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from alembic import command

from bot.config import Settings
from bot.db.session import alembic_config, create_engine, upgrade_database
from bot.protocols import default_schedules_dir
from bot.sandbox.fake_api import FakeTelegramServer
from bot.telegram.doctor import diagnose
from tests.test_cli import ENROL, run_cli

TOKEN = "987654321:AAdoctor_test_token_000000000000"
STAFF, ONCALL, NURSE = -1001, -1002, 4242
APPROVAL = "approved_by: null\napproved_on: null"


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(bot_token=TOKEN, bot_username="unit_followup_bot") as fake:
        fake.add_group(STAFF, title="Staff")
        fake.add_group(ONCALL, title="On call")
        yield fake


@pytest.fixture
def schedules(tmp_path: Path) -> Path:
    """The repository's protocols; only knee-cryoneurolysis is approved, as a unit would have it."""
    folder = tmp_path / "schedules"
    folder.mkdir()
    for source in default_schedules_dir().glob("*.yaml"):
        text = source.read_text(encoding="utf-8")
        if source.stem == "knee-cryoneurolysis":
            assert APPROVAL in text
            text = text.replace(APPROVAL, "approved_by: Dr Test\napproved_on: 2026-11-01")
        (folder / source.name).write_text(text, encoding="utf-8")
    return folder


def env_for(server: FakeTelegramServer, tmp_path: Path, schedules: Path) -> dict[str, str]:
    """A healthy production configuration, as environment variables."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": server.api_base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "STAFF_CHAT_ID": str(STAFF),
        "ONCALL_CHAT_ID": str(ONCALL),
        "STAFF_USER_IDS": str(NURSE),
        "SCHEDULES_DIR": str(schedules),
        "ENABLED_PROTOCOLS": "knee-cryoneurolysis",
        "MEDIA_DIR": str(tmp_path / "media"),
    }


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})  # type: ignore[call-arg]


async def migrated(env: dict[str, str], revision: str = "head") -> None:
    engine = create_engine(env["DATABASE_URL"])
    try:
        if revision == "head":
            await upgrade_database(engine)
        else:
            async with engine.begin() as connection:
                await connection.run_sync(
                    lambda sync: command.upgrade(alembic_config(sync), revision)
                )
    finally:
        await engine.dispose()


def database_file(env: dict[str, str]) -> Path:
    return Path(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))


def sql(env: dict[str, str], statement: str) -> None:
    with sqlite3.connect(database_file(env)) as connection:
        connection.execute(statement)


async def test_a_healthy_configuration_passes(
    server: FakeTelegramServer, tmp_path: Path, schedules: Path
) -> None:
    env = env_for(server, tmp_path, schedules)
    await migrated(env)
    result = await asyncio.to_thread(run_cli, "doctor", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("ready: ")
    for seen in ("@unit_followup_bot", "STAFF_CHAT_ID Staff", "ONCALL_CHAT_ID On call"):
        assert seen in result.stdout
    assert ("getChatMember", 200) in server.request_log


def _unapproved_enabled(env: dict[str, str]) -> None:
    env["ENABLED_PROTOCOLS"] = "knee-cryoneurolysis,chronic-knee-pain"


#: (what is broken, the setting the one problem line must name, words it must hold)
BROKEN: list[tuple[str, Callable[[dict[str, str], FakeTelegramServer], object], str, str]] = [
    (
        "token revoked",
        lambda env, _: env.update(TELEGRAM_BOT_TOKEN="987654321:AArevoked_token_00000000000000"),
        "TELEGRAM_BOT_TOKEN",
        "refused the token",
    ),
    (
        "Telegram out of reach",
        lambda env, _: env.update(TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot"),
        "TELEGRAM_API_BASE_URL",
        "HTTPS_PROXY",
    ),
    (
        "another bot's username",
        lambda env, _: env.update(BOT_USERNAME="cryo_followup_bot"),
        "BOT_USERNAME",
        "BOT_USERNAME=unit_followup_bot",
    ),
    (
        "no staff chat",
        lambda env, _: env.pop("STAFF_CHAT_ID"),
        "STAFF_CHAT_ID",
        "alerts go nowhere",
    ),
    (
        "staff chat unknown",
        lambda env, _: env.update(STAFF_CHAT_ID="-1009"),
        "STAFF_CHAT_ID",
        "'Chat not found' for chat -1009",
    ),
    (
        "bot removed from the staff group",
        lambda _, server: server.remove_bot_from_group(STAFF),
        "STAFF_CHAT_ID",
        "kicked",
    ),
    (
        "bot may not send in the staff group",
        lambda _, server: server.restrict_bot(STAFF),
        "STAFF_CHAT_ID",
        "may not send",
    ),
    (
        "bot left the on-call group",
        lambda _, server: server.remove_bot_from_group(ONCALL, banned=False),
        "ONCALL_CHAT_ID",
        "not a member",
    ),
    (
        "no staff user",
        lambda env, _: env.pop("STAFF_USER_IDS"),
        "STAFF_USER_IDS",
        "staff add",
    ),
    (
        "an unapproved protocol enabled",
        lambda env, _: _unapproved_enabled(env),
        "ENABLED_PROTOCOLS",
        "chronic-knee-pain v2",
    ),
    (
        "a protocol id that no file has",
        lambda env, _: env.update(ENABLED_PROTOCOLS="knee-cryo"),
        "ENABLED_PROTOCOLS",
        "knee-cryo",
    ),
    (
        "a database written by a newer version",
        lambda env, _: sql(env, "UPDATE alembic_version SET version_num = '0099'"),
        "DATABASE_URL",
        "revision 0099",
    ),
    (
        "a live follow-up in a time zone this machine lacks",
        lambda env, _: sql(env, "UPDATE episodes SET time_zone = 'Mars/Olympus'"),
        "TIMEZONE",
        "Mars/Olympus",
    ),
]


@pytest.mark.parametrize(
    ("breakage", "setting", "words"),
    [(b, s, w) for _, b, s, w in BROKEN],
    ids=[name for name, *_ in BROKEN],
)
async def test_each_problem_is_named_by_its_setting(
    server: FakeTelegramServer,
    tmp_path: Path,
    schedules: Path,
    breakage: Callable[[dict[str, str], FakeTelegramServer], object],
    setting: str,
    words: str,
) -> None:
    env = env_for(server, tmp_path, schedules)
    await migrated(env)
    if setting == "TIMEZONE":
        enrolled = await asyncio.to_thread(
            run_cli, *ENROL, cwd=tmp_path, DATABASE_URL=env["DATABASE_URL"]
        )
        assert enrolled.returncode == 0, enrolled.stderr
    assert not (await diagnose(settings_of(env))).problems  # healthy before the breakage
    breakage(env, server)
    findings = await diagnose(settings_of(env))
    assert [problem.setting for problem in findings.problems] == [setting], findings.problems
    (problem,) = findings.problems
    assert problem.loses_alerts
    assert words in problem.text, problem.text


async def test_warnings_do_not_stop_the_bot(
    server: FakeTelegramServer, tmp_path: Path, schedules: Path
) -> None:
    """Pending migrations (run applies them) and a media folder that is a file lose no alert."""
    env = env_for(server, tmp_path, schedules)
    await migrated(env, "0003")
    (tmp_path / "media").write_text("not a folder", encoding="utf-8")
    findings = await diagnose(settings_of(env))
    assert sorted(p.setting for p in findings.problems) == ["DATABASE_URL", "MEDIA_DIR"]
    assert not findings.blocking
    assert "db upgrade" in next(p.text for p in findings.problems if p.setting == "DATABASE_URL")
    starting = await diagnose(settings_of(env), starting=True)
    assert [p.setting for p in starting.problems] == ["MEDIA_DIR"]
    result = await asyncio.to_thread(run_cli, "doctor", cwd=tmp_path, **env)
    assert result.returncode == 1, result.stderr
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())


async def test_doctor_exits_2_with_one_line_per_problem(
    server: FakeTelegramServer, tmp_path: Path, schedules: Path
) -> None:
    env = env_for(server, tmp_path, schedules)
    del env["STAFF_CHAT_ID"], env["STAFF_USER_IDS"]
    result = await asyncio.to_thread(run_cli, "doctor", cwd=tmp_path, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: STAFF_USER_IDS: ")
    assert lines[1].startswith("error: STAFF_CHAT_ID: ")
    assert not database_file(env).exists()  # the doctor creates nothing


async def test_run_refuses_to_start_without_a_staff_chat(
    server: FakeTelegramServer, tmp_path: Path, schedules: Path
) -> None:
    env = env_for(server, tmp_path, schedules)
    del env["STAFF_CHAT_ID"]
    result = await asyncio.to_thread(run_cli, "run", cwd=tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert "Bot running" not in result.stdout
    assert result.stderr.splitlines()[0].startswith("error: STAFF_CHAT_ID: not set")
    assert "not started" in result.stderr.splitlines()[-1]
    assert ("getUpdates", 200) not in server.request_log


async def test_an_unapproved_protocol_on_disk_blocks_nothing_when_not_enabled(
    server: FakeTelegramServer, tmp_path: Path, schedules: Path
) -> None:
    """README step 4: approve the protocol you use; the other one may wait, disabled."""
    env = env_for(server, tmp_path, schedules)
    assert not (await diagnose(settings_of(env))).problems
    refused = await asyncio.to_thread(
        run_cli, *ENROL, "--protocol", "chronic-knee-pain", cwd=tmp_path, **env
    )
    assert refused.returncode == 2
    assert "not in ENABLED_PROTOCOLS" in refused.stderr
    assert not database_file(env).exists()


async def test_enroll_uses_the_username_telegram_gives(
    server: FakeTelegramServer, tmp_path: Path, schedules: Path
) -> None:
    """Without BOT_USERNAME: getMe before the bot's first start, then the stored username."""
    env = env_for(server, tmp_path, schedules)
    first = await asyncio.to_thread(run_cli, *ENROL, cwd=tmp_path, **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("https://t.me/unit_followup_bot?start=")
    assert server.request_log.count(("getMe", 200)) == 1
    sql(env, "INSERT INTO bot_facts VALUES ('bot_username:987654321', 'renamed_bot', '2026-12-01')")
    second = await asyncio.to_thread(run_cli, *ENROL, "--label", "P-002", cwd=tmp_path, **env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("https://t.me/renamed_bot?start=")
    assert server.request_log.count(("getMe", 200)) == 1  # the stored name, no second getMe
