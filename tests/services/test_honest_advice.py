"""The safety advice says "the team has been alerted" only when an alert can reach a team chat.

The sentence is the protocol's (clinical wording), recognised through the catalog: every shipped
advice must contain one of :data:`bot.domain.wording.TEAM_TOLD` in each language, or a
reworded protocol would tell patients the team knows when it cannot."""

from __future__ import annotations

import pytest

from bot.domain.protocol import Protocol, Severity
from bot.domain.wording import TEAM_TOLD
from bot.i18n import t
from bot.protocols import ProtocolRegistry, default_schedules_dir
from bot.services.chat_health import honest_advice

PROTOCOLS = ProtocolRegistry.from_dir(default_schedules_dir()).all()


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.id)
def test_every_shipped_advice_says_the_team_was_told_in_a_sentence_the_bot_knows(
    protocol: Protocol,
) -> None:
    for severity in Severity:
        advice = getattr(protocol.safety_advice, severity.value)
        for language in protocol.languages:
            text = advice.get(language)
            assert any(t(language, sentence) in text for sentence in TEAM_TOLD), (
                severity,
                language,
            )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.id)
def test_with_no_team_chat_the_advice_asks_the_patient_to_call_in_every_language(
    protocol: Protocol,
) -> None:
    for severity in Severity:
        advice = getattr(protocol.safety_advice, severity.value)
        for language in protocol.languages:
            text = advice.get(language).format(unit_phone="0102", oncall_phone="0304")
            kept = honest_advice(text, language=language, team_reachable=True, unit_phone="0102")
            assert kept == text
            told = honest_advice(text, language=language, team_reachable=False, unit_phone="0102")
            assert not any(t(language, sentence) in told for sentence in TEAM_TOLD)
            assert told.count("0102") >= 2  # the protocol's number, and the call to make
            assert "  " not in told
