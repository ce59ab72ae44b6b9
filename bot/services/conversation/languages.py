"""The languages the bot can speak to a patient, and what it tells someone not enrolled."""

from __future__ import annotations

from functools import cache

from bot.domain.protocol import Protocol
from bot.i18n import available_languages, normalise_language, t
from bot.protocols import DEFAULT_PROTOCOL_ID
from bot.services.context import ServiceContext


def interface_languages(protocol: Protocol) -> list[str]:
    """Languages a patient may choose: a catalog exists AND the protocol has its wording.

    Nothing here lists languages: adding one is a catalog plus the protocol's entries.
    """
    catalogs = set(available_languages())
    return [language for language in protocol.languages if language in catalogs]


@cache
def _spoken(languages: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`interface_languages` for :func:`guess_language`, read from disk once per set of
    protocol languages (the folder was read for every update; a catalog added while running
    shows in ``/language`` at once, and here after a restart)."""
    catalogs = set(available_languages())
    return tuple(language for language in languages if language in catalogs)


def default_protocol(ctx: ServiceContext) -> Protocol:
    """The protocol used to talk to someone not enrolled yet (its languages, its wording)."""
    registry = ctx.protocols.registry
    try:
        return registry.latest(DEFAULT_PROTOCOL_ID)
    except KeyError:
        return registry.latest(registry.ids()[0])


def guess_language(ctx: ServiceContext, language_code: str | None) -> str:
    """Telegram's ``language_code`` mapped onto a language we can speak (no disk read)."""
    return normalise_language(language_code, _spoken(default_protocol(ctx).languages))


def unknown_chat_text(language: str) -> str:
    """What someone who is not enrolled is told (in their Telegram language)."""
    return t(
        language,
        "Hello! To start your follow-up, please open the link or scan the QR code the unit gave you.",
    )
