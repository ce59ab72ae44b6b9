"""Protocol files as validated data: every kind of mistake is named with its file, its path in
the file and what is wrong; ``protocol check`` and ``run`` refuse a bad or unapproved file;
several protocols coexist and a follow-up keeps the version it was enrolled with; ``protocol
show`` prints the timeline in local time, across DST changes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from bot.cli import main
from bot.db.models import CheckIn, Episode
from bot.domain.protocol import Indication, KneeSide
from bot.errors import ProtocolError
from bot.protocols import (
    ProtocolRegistry,
    default_schedules_dir,
    load_protocol_file,
    parse_protocol,
)
from bot.services import enrolment
from tests.harness import PARIS, BotHarness
from tests.harness import Patient as VirtualPatient

ROOT = Path(__file__).resolve().parent.parent
KNEE = default_schedules_dir() / "knee-cryoneurolysis.yaml"
CHRONIC = default_schedules_dir() / "chronic-knee-pain.yaml"
Raw = dict[str, Any]


def _raw() -> Raw:
    return yaml.safe_load(KNEE.read_text(encoding="utf-8"))


def _index(items: list[Raw], item_id: str) -> int:
    return next(i for i, item in enumerate(items) if item["id"] == item_id)


def _write(folder: Path, raw: Raw, name: str = "knee-cryoneurolysis.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _unknown_key(raw: Raw) -> str:
    i = _index(raw["checkins"], "d3")
    raw["checkins"][i]["colour"] = "blue"
    return f"checkins[{i}].colour: unknown key (check its spelling against the protocol schema)"


def _unknown_key_in_a_rule(raw: Raw) -> str:
    i = _index(raw["rules"], "pain_high")
    raw["rules"][i]["treshold"] = 8
    return f"rules[{i}].treshold: unknown key (check its spelling against the protocol schema)"


def _missing_translation(raw: Raw) -> str:
    i = _index(raw["questions"], "pain_worst")
    del raw["questions"][i]["text"]["en"]
    return f"questions[{i}].text: missing translation for en"


def _rule_on_a_missing_question(raw: Raw) -> str:
    i = _index(raw["rules"], "pain_high")
    raw["rules"][i]["question"] = "pain_avgg"
    return f"rules[{i}].question: no question 'pain_avgg'"


def _checkin_question_missing(raw: Raw) -> str:
    i = _index(raw["checkins"], "d3")
    raw["checkins"][i]["questions"][1] = "swelings"
    return f"checkins[{i}].questions[1]: no question 'swelings'"


def _time_in_quiet_hours(raw: Raw) -> str:
    i = _index(raw["checkins"], "d1")
    raw["checkins"][i]["time"] = "21:30"
    return f"checkins[{i}].time: 21:30 is inside quiet hours 21:00-08:00"


def _duplicate_id(raw: Raw) -> str:
    i = _index(raw["checkins"], "d2")
    raw["checkins"][i]["id"] = "d1"
    return f"checkins[{i}].id: duplicate check-in id 'd1'"


def _red_flag_without_rule(raw: Raw) -> str:
    del raw["rules"][_index(raw["rules"], "fever")]
    return "red_flags.R3: no red_flag rule escalates this flag"


def _threshold_above_the_scale(raw: Raw) -> str:
    i = _index(raw["rules"], "pain_high")
    raw["rules"][i]["value"] = 15
    return (
        f"rules[{i}].value: rule 'pain_high': pain_avg >= 15 can never fire "
        "(pain_avg is a scale from 0 to 10): choose a value from 1 to 10"
    )


def _threshold_below_the_scale(raw: Raw) -> str:
    i = _index(raw["rules"], "pain_high")
    raw["rules"][i]["value"] = -3
    return (
        f"rules[{i}].value: rule 'pain_high': pain_avg >= -3 fires on every answer "
        "(pain_avg is a scale from 0 to 10): choose a value from 1 to 10"
    )


def _threshold_beyond_a_choice(raw: Raw) -> str:
    i = _index(raw["rules"], "pgic_worse")
    raw["rules"][i]["value"] = 8
    return (
        f"rules[{i}].value: rule 'pgic_worse': pgic >= 8 can never fire "
        "(the options of pgic are worth 1, 2, 3, 4, 5, 6, 7): choose a value from 2 to 7"
    )


def _education_without_when_to_call(raw: Raw) -> str:
    raw["education"]["topics"]["bruise"]["text"]["en"] = "A bruise is normal."
    return "education.topics.bruise.text.en: must say when to call, with {unit_phone}"


def _education_without_french_keywords(raw: Raw) -> str:
    raw["education"]["topics"]["numb_skin"]["keywords"]["fr"] = []
    return "education.topics.numb_skin.keywords.fr: no keywords in this language"


def _education_with_an_unknown_placeholder(raw: Raw) -> str:
    text = raw["education"]["topics"]["swelling"]["text"]["fr"]
    raw["education"]["topics"]["swelling"]["text"]["fr"] = text + " {unit_name}"
    return "education.topics.swelling.text.fr: unknown placeholder unit_name"


_MISREAD = (
    "a patient answers the words, not the grammar; ask it so that yes means the problem is present"
)


def _negative_yes_no_in_english(raw: Raw) -> str:
    i = _index(raw["questions"], "bleeding")
    raw["questions"][i]["text"]["en"] = "Is the bleeding through the dressing not stopping?"
    return f"questions[{i}].text.en: question 'bleeding' (en) is phrased in the negative ('not'): {_MISREAD}"


def _negative_contraction_in_english(raw: Raw) -> str:
    i = _index(raw["questions"], "toes_check")
    raw["questions"][i]["text"]["en"] = "Aren't your toes warm and pink?"
    return (
        f"questions[{i}].text.en: question 'toes_check' (en) is phrased in the negative "
        f"('not'): {_MISREAD}"
    )


def _negative_red_flag_question_in_french(raw: Raw) -> str:
    raw["red_flags"]["R7"]["question"]["fr"] = "Ne pouvez-vous plus vous appuyer sur la jambe ?"
    return f"red_flags.R7.question.fr: red flag R7's question (fr) is phrased in the negative ('ne'): {_MISREAD}"


def _double_reading_in_french(raw: Raw) -> str:
    raw["red_flags"]["R10"]["question"]["fr"] = "Le saignement continue-t-il ?"
    return f"red_flags.R10.question.fr: red flag R10's question (fr) reads both ways ('continue'): {_MISREAD}"


def _rise_beyond_the_scale(raw: Raw) -> str:
    i = _index(raw["rules"], "swelling_rising_early")
    raw["rules"][i]["by"] = 5
    return (
        f"rules[{i}].by: rule 'swelling_rising_early': a rise of 5 on swelling can never "
        "happen (the options of swelling are worth 0, 1, 2, 3): choose a value from 1 to 3"
    )


def _rise_over_baseline_beyond_the_scale(raw: Raw) -> str:
    i = _index(raw["rules"], "pain_above_baseline")
    raw["rules"][i]["by"] = 11
    return (
        f"rules[{i}].by: rule 'pain_above_baseline': a rise of 11 on pain_avg can never "
        "happen (pain_avg is a scale from 0 to 10): choose a value from 1 to 10"
    )


def _days_the_wrong_way_round(raw: Raw) -> str:
    i = _index(raw["rules"], "swelling_rising_early")
    raw["rules"][i]["from_day"] = 5
    return f"rules[{i}].until_day: until_day 3 is before from_day 5"


def _greetings_out_of_order(raw: Raw) -> str:
    raw["greetings"][1]["since"] = "04:00"
    return "greetings[1].since: 04:00 must come after 05:00 (greetings in time-of-day order)"


def _negative_earliest_day(raw: Raw) -> str:
    raw["red_flags"]["R3"]["earliest_day"] = -1
    return "red_flags.R3.earliest_day: Input should be greater than or equal to 0"


def _advice_without_the_team_sentence(raw: Raw) -> str:
    """A unit rewording "L'équipe a été alertée": the bot could no longer take it out when no
    team chat can take the alert, and the patient would be told the team knows."""
    text = raw["safety_advice"]["urgent"]["fr"]
    raw["safety_advice"]["urgent"]["fr"] = text.replace(
        "L'équipe a été alertée et va vous contacter.", "L'équipe est prévenue."
    )
    return (
        "safety_advice.urgent.fr: keep one of these sentences word for word: "
        '"L\'équipe a été alertée et va vous contacter." / "L\'équipe a été alertée." / '
        '"Une infirmière vous contactera le prochain jour ouvré." (the bot takes it out and '
        "asks the patient to call when no team chat can take the alert; the words are in "
        "fr/LC_MESSAGES/messages.po)"
    )


MISTAKES: dict[str, Callable[[Raw], str]] = {
    "advice without the team sentence": _advice_without_the_team_sentence,
    "unknown key": _unknown_key,
    "unknown key in a rule": _unknown_key_in_a_rule,
    "missing translation": _missing_translation,
    "rule on a missing question": _rule_on_a_missing_question,
    "check-in on a missing question": _checkin_question_missing,
    "time point in quiet hours": _time_in_quiet_hours,
    "duplicate id": _duplicate_id,
    "red flag without rule": _red_flag_without_rule,
    "threshold above the scale": _threshold_above_the_scale,
    "threshold below the scale": _threshold_below_the_scale,
    "threshold beyond a choice's values": _threshold_beyond_a_choice,
    "education text without when to call": _education_without_when_to_call,
    "education topic without French keywords": _education_without_french_keywords,
    "education text with an unknown placeholder": _education_with_an_unknown_placeholder,
    "negative yes/no in English": _negative_yes_no_in_english,
    "negative contraction (n't) in English": _negative_contraction_in_english,
    "negative red-flag question in French (ne … plus)": _negative_red_flag_question_in_french,
    "double reading in French (continue-t-il)": _double_reading_in_french,
    "rise beyond the scale": _rise_beyond_the_scale,
    "rise over baseline beyond the scale": _rise_over_baseline_beyond_the_scale,
    "days the wrong way round": _days_the_wrong_way_round,
    "greetings out of order": _greetings_out_of_order,
    "negative earliest day": _negative_earliest_day,
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_names_the_file_the_path_and_the_problem(mistake: str, tmp_path: Path) -> None:
    raw = _raw()
    expected = MISTAKES[mistake](raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_file(path)
    assert f"{path}: {expected}" in str(caught.value).splitlines()
    assert caught.value.file == str(path)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("title: [unclosed\n", 3, "while parsing a flow sequence"),
        ("version: 1\nversion: 2\n", 3, "duplicate key 'version'"),  # YAML would keep the last
    ],
)
def test_bad_yaml_is_one_line_with_its_place(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\n" + text, encoding="utf-8")
    with pytest.raises(ProtocolError) as caught:
        load_protocol_file(path)
    (message,) = str(caught.value).splitlines()
    assert message.startswith(f"{path}: line {line}, column ")
    assert problem in message


def test_a_red_flag_key_given_twice_is_refused(tmp_path: Path) -> None:
    text = KNEE.read_text(encoding="utf-8")
    copy = text.replace("red_flags:\n", "red_flags:\n  R3:\n    question: {fr: a, en: b}\n", 1)
    path = tmp_path / "twice.yaml"
    path.write_text(copy, encoding="utf-8")
    with pytest.raises(ProtocolError, match="duplicate key 'R3'"):
        load_protocol_file(path)


def test_protocol_check_prints_one_line_per_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw()
    expected = [_time_in_quiet_hours(raw), _red_flag_without_rule(raw)]
    path = _write(tmp_path, raw)
    assert main(["protocol", "check", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.removeprefix("error: ") for line in lines] == [f"{path}: {e}" for e in expected]

    for good in (KNEE, CHRONIC):
        assert main(["protocol", "check", str(good)]) == 0
        assert "valid" in capsys.readouterr().out


def test_protocol_check_refuses_a_threshold_that_can_never_fire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw()
    expected = _threshold_above_the_scale(raw)
    path = _write(tmp_path, raw)
    assert main(["protocol", "check", str(path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {path}: {expected}"]


def test_protocol_check_warns_about_a_red_flag_asked_after_its_earliest_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As shipped before: spreading numbness (day 0) first asked at d7; fever (day 1) at d3."""
    raw = _raw()
    for checklist in ("flags_day0", "flags_early"):
        flags = raw["questions"][_index(raw["questions"], checklist)]["flags"]
        flags[:] = [flag for flag in flags if flag not in ("V1", "R3")]
    del raw["red_flags"]["V4"]["earliest_day"]
    path = _write(tmp_path, raw)
    assert main(["protocol", "check", str(path)]) == 0  # a warning, not a refusal
    captured = capsys.readouterr()
    assert "valid" in captured.out
    assert captured.err.strip().splitlines() == [
        f"warning: {path}: red_flags.R3.earliest_day: red flag R3 can be present from day 1 but "
        "is first asked at d3: ask it at d1 (in a checklist's flags or as a yes/no's flag)",
        f"warning: {path}: red_flags.V1.earliest_day: red flag V1 can be present from day 0 but "
        "is first asked at d7: ask it at d0_evening (in a checklist's flags or as a yes/no's "
        "flag)",
        f"warning: {path}: red_flags.V4: red flag V4 has no earliest_day: when it is first "
        "asked is unchecked",
    ]


def test_a_red_flag_asked_late_for_one_indication_only_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw()
    raw["red_flags"]["W1"]["earliest_day"] = 1  # the wound question comes at d3 (TKA only)
    path = _write(tmp_path, raw)
    assert main(["protocol", "check", str(path)]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"warning: {path}: red_flags.W1.earliest_day: red flag W1 can be present from day 1 but "
        "is first asked at d3: ask it at d1 (in a checklist's flags or as a yes/no's flag) for "
        "after_knee_replacement"
    ]


def test_the_shipped_protocols_ask_every_red_flag_in_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for good in (KNEE, CHRONIC):
        assert main(["protocol", "check", str(good)]) == 0
        assert capsys.readouterr().err == ""


def test_protocol_show_prints_which_red_flag_is_asked_at_which_check_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["protocol", "show", str(KNEE), "--procedure-at", "2026-10-22 09:30"]
    assert main([*args, "--language", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Red flags asked"))
    header, *table = lines[start + 1 :]
    assert header.split() == ["from", "d0_evening", "d1", "d2", "d3", "d7", "d14", "w6", "m3", "m6"]
    rows = {line.split()[0]: line.split() for line in table}
    assert rows["R10"][:11] == ["R10", "D0", "✓", "·", "·", "·", "·", "·", "·", "·", "·"]
    assert " ".join(rows["R10"][11:]) == "Blood still coming through the dressing"
    assert rows["R3"][1:11] == ["D1", "·", "✓", "✓", "✓", "✓", "✓", "·", "·", "·"]
    assert rows["V3"][1:7] == ["D3", "·", "·", "·", "✓", "✓"]
    assert rows["W1"][2:11] == ["·"] * 9  # the wound question is for knee replacements only
    assert set(rows) == set(_raw()["red_flags"])


def test_a_threshold_inside_the_scale_is_accepted_whatever_its_operator() -> None:
    raw = _raw()
    i = _index(raw["rules"], "pain_high")
    for op, value in ((">=", 10), (">", 9), ("<=", 0), ("<", 1), ("==", 0), ("==", 10)):
        raw["rules"][i].update(op=op, value=value)
        protocol = parse_protocol(yaml.safe_dump(raw), source="edited")
        assert protocol.rules[i].model_dump()["value"] == value


def _unused_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_bot(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot run`` with a fake token and a Bot API address where nobody listens."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    clean.update(
        {
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{_unused_loopback_port()}/bot",
            "DATABASE_URL": f"sqlite+aiosqlite:///{cwd / 'bot.db'}",
        }
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_refuses_to_start_with_a_bad_protocol_file(tmp_path: Path) -> None:
    raw = _raw()
    expected = [_missing_translation(raw), _time_in_quiet_hours(raw)]
    schedules = tmp_path / "schedules"
    path = _write(schedules, raw)
    result = _run_bot(tmp_path, SCHEDULES_DIR=str(schedules), ALLOW_UNAPPROVED_PROTOCOL="true")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line.removeprefix("error: ") for line in result.stderr.strip().splitlines()]
    assert lines == [f"{path}: {e}" for e in expected]
    assert not (tmp_path / "bot.db").exists()  # refused before touching anything


@pytest.mark.slow  # three `python -m bot run` processes
def test_run_refuses_an_unapproved_protocol_unless_allowed(tmp_path: Path) -> None:
    schedules = tmp_path / "schedules"
    raw = _raw()
    _write(schedules, raw)
    refused = _run_bot(tmp_path, SCHEDULES_DIR=str(schedules))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: knee-cryoneurolysis v{raw['version']}: approved_by: not approved by a "
        "physician: fill "
        "approved_by and approved_on, leave knee-cryoneurolysis out of ENABLED_PROTOCOLS, or "
        "set ALLOW_UNAPPROVED_PROTOCOL=true for testing"
    ]

    # Allowed, or approved: the protocol passes, and the bot stops only because its preflight
    # finds nobody answering at the Bot API address (one line naming the setting, exit 2).
    allowed = _run_bot(tmp_path, SCHEDULES_DIR=str(schedules), ALLOW_UNAPPROVED_PROTOCOL="true")
    raw["approved_by"], raw["approved_on"] = "Dr Martin", "2026-11-20"
    approved_dir = tmp_path / "approved"
    _write(approved_dir / "schedules", raw)
    # Its own database: the first run stored version 1 without approval, and a version's content
    # never changes silently (approving it means a new version, or a fresh database).
    approved = _run_bot(approved_dir, SCHEDULES_DIR=str(approved_dir / "schedules"))
    for result in (allowed, approved):
        assert result.returncode == 2, result.stderr
        assert "error: TELEGRAM_API_BASE_URL: cannot reach" in result.stderr
        assert "approved" not in result.stderr
        assert "Traceback" not in result.stderr


def test_the_repository_protocols_coexist_and_the_chronic_one_is_shorter() -> None:
    registry = ProtocolRegistry.from_dir(default_schedules_dir())
    assert registry.ids() == ["chronic-knee-pain", "knee-cryoneurolysis"]
    knee, chronic = registry.latest("knee-cryoneurolysis"), registry.latest("chronic-knee-pain")
    assert len(chronic.checkins) < len(knee.checkins)
    assert set(chronic.languages) == {"fr", "en"}
    # Same rules style: every red flag of the chronic protocol is escalated as in the knee one.
    knee_rules = {rule.id: rule for rule in knee.rules}
    for rule in chronic.rules:
        assert rule.model_dump() == knee_rules[rule.id].model_dump(), rule.id


async def test_a_chronic_pain_follow_up_runs_beside_a_knee_one(harness: BotHarness) -> None:
    chronic = harness.ctx.protocols.registry.latest("chronic-knee-pain")
    invitation = await enrolment.enrol(
        harness.ctx,
        label="C-001",
        procedure_at=datetime(2026, 12, 1, 9, 30, tzinfo=PARIS),
        side=KneeSide.RIGHT,
        indication=Indication.CHRONIC_PAIN,
        language="en",
        protocol=chronic,
    )
    await harness.consented_patient(1301, label="K-001")
    patient = VirtualPatient(harness.server, 1302, "en")
    patient.say(f"/start {invitation.token}")
    welcome = await patient.next()
    assert "this evening, then on days 2 and 14, then at 6 weeks, 3 and 6 months" in (
        welcome.text or ""
    )
    patient.tap(welcome, "I agree")
    patient.tap(await patient.next(), "7")
    await patient.until("Next check-in")
    async with harness.ctx.sessions() as session:
        plans = {
            label: sorted(
                await session.scalars(
                    select(CheckIn.def_id)
                    .join(Episode)
                    .join(Episode.patient)
                    .where(Episode.patient.has(label=label))
                )
            )
            for label in ("C-001", "K-001")
        }
    assert plans["C-001"] == sorted(c.id for c in chronic.checkins)
    assert len(plans["K-001"]) == 9


async def test_an_episode_keeps_its_protocol_version_when_the_file_changes(
    harness: BotHarness, tmp_path: Path
) -> None:
    first = await harness.consented_patient(1303, label="P-001")
    await harness.stop_bot()
    raw = _raw()
    raw["version"] += 1
    raw["messages"]["day0_normal"]["fr"] = "Nouveau texte : gardez le pansement 48 h."
    harness.settings_overrides = {"schedules_dir": _write(tmp_path / "v2", raw).parent}
    await harness.start_bot()
    second = await harness.consented_patient(1304, label="P-002")  # enrolled under v2

    await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    old = await first.until("pansement")
    new = await second.until("pansement")
    assert (old.text or "").startswith("Il est normal d'avoir un peu de gonflement")
    assert new.text == "Nouveau texte : gardez le pansement 48 h."
    async with harness.ctx.sessions() as session:
        versions = await session.scalar(
            select(func.count(func.distinct(Episode.protocol_version_id)))
        )
    assert versions == 2


async def test_same_version_with_other_content_is_refused_at_start(
    harness: BotHarness, tmp_path: Path
) -> None:
    await harness.stop_bot()
    raw = _raw()
    raw["messages"]["day0_normal"]["fr"] = "Changé sans changer de version."
    harness.settings_overrides = {"schedules_dir": _write(tmp_path / "same", raw).parent}
    with pytest.raises(
        ProtocolError, match=f"version {raw['version']} is already in use with other content"
    ):
        await harness.start_bot()


def _timeline(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str]:
    assert main(["protocol", "show", str(KNEE), *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {line.split()[0]: line for line in lines[1:] if line and not line.startswith(" ")}


def test_protocol_show_prints_local_times_across_the_autumn_dst_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Paris leaves summer time on Sunday 25 October 2026, day 3 of this follow-up.
    timeline = _timeline(capsys, "--procedure-at", "2026-10-22 09:30")
    assert "jeudi 22 octobre à 18:00" in timeline["d0_evening"]
    assert "samedi 24 octobre à 10:00" in timeline["d2"]
    assert "dimanche 25 octobre à 10:00" in timeline["d3"]
    assert "jeudi 29 octobre à 10:00" in timeline["d7"]
    assert "vendredi 22 janvier à 10:00" in timeline["m3"]


def test_protocol_show_spring_dst_other_zone_and_late_procedure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # New York springs forward on Sunday 14 March 2027; a procedure at 19:30 pushes the day-0
    # evening check-in (max(18:00, +3 h) = 22:30) into quiet hours: cancelled, not missed.
    timeline = _timeline(
        capsys,
        "--procedure-at",
        "2027-03-12 19:30",
        "--timezone",
        "America/New_York",
        "--language",
        "en",
    )
    assert "[cancelled: quiet_hours]" in timeline["d0_evening"]
    assert "Saturday 13 March at 10:00" in timeline["d1"]
    assert "Sunday 14 March at 10:00" in timeline["d2"]  # the DST day: still 10:00 on the wall
    assert "Monday 15 March at 10:00" in timeline["d3"]


async def test_approving_a_tested_version_needs_no_version_bump(tmp_path: Path) -> None:
    """Approval signs the content; the clinical content (and so the snapshot digest) is the same."""
    from bot.clock import SystemClock
    from bot.db.session import create_engine, make_sessionmaker, upgrade_database
    from bot.protocols import ProtocolRegistry, parse_protocol
    from bot.services.context import ProtocolStore

    text = KNEE.read_text(encoding="utf-8")
    unapproved = parse_protocol(text, source="knee")
    approved = parse_protocol(
        text.replace("approved_by: null", "approved_by: Dr Test").replace(
            "approved_on: null", "approved_on: 2026-11-25"
        ),
        source="knee",
    )
    assert approved.approved and not unapproved.approved
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    try:
        rows = []
        for protocol in (unapproved, approved):
            store = ProtocolStore(ProtocolRegistry([protocol]))
            async with sessions.begin() as session:
                rows.append(await store.row_for(session, protocol, SystemClock()))
        assert rows[0] == rows[1]
        fresh = ProtocolStore(ProtocolRegistry([]))
        async with sessions() as session:
            stored = await fresh.protocol_of(session, rows[0])
        assert stored.approved_by == "Dr Test"
    finally:
        await engine.dispose()


def test_every_question_of_the_repository_protocols_has_a_staff_label() -> None:
    """Cards and views name a question by its label: a question without one would show its
    whole text to staff (and a question id never)."""
    for path in sorted(KNEE.parent.glob("*.yaml")):
        protocol = parse_protocol(path.read_text(encoding="utf-8"), source=path.name)
        unlabelled = [q.id for q in protocol.questions if q.label is None]
        assert unlabelled == [], path.name


async def test_labelling_the_questions_of_a_version_in_use_needs_no_version_bump(
    tmp_path: Path,
) -> None:
    """A version stored before its questions had labels still starts, and gets the labels:
    a label names a question for staff, it changes nothing a patient is asked."""
    from bot.clock import SystemClock
    from bot.db.session import create_engine, make_sessionmaker, upgrade_database
    from bot.services.context import ProtocolStore

    raw = _raw()
    labelled = parse_protocol(KNEE.read_text(encoding="utf-8"), source="knee")
    for question in raw["questions"]:
        question.pop("label", None)
    bare = parse_protocol(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), source="knee")
    assert bare.question("pain_avg").name("en") == bare.question("pain_avg").text.get("en")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    try:
        rows = []
        for protocol in (bare, labelled):
            store = ProtocolStore(ProtocolRegistry([protocol]))
            async with sessions.begin() as session:
                rows.append(await store.row_for(session, protocol, SystemClock()))
        assert rows[0] == rows[1]
        async with sessions() as session:
            stored = await ProtocolStore(ProtocolRegistry([])).protocol_of(session, rows[0])
        assert stored.question("pain_avg").name("fr") == "Douleur moyenne (24 h)"
    finally:
        await engine.dispose()
