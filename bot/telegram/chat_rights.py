"""Whether the bot may post in a group, read from getChat and getChatMember: shared by the
doctor (at start) and the messenger's periodic check of the alert chats (at run time)."""

from __future__ import annotations

from typing import Literal

from telegram import Chat, ChatFullInfo, ChatMember, ChatMemberAdministrator, ChatMemberRestricted

#: Why the bot may not post: it is out of the group, or in it without the right to send.
Refusal = tuple[Literal["removed", "restricted"], str]


def cannot_post(chat: ChatFullInfo, member: ChatMember) -> Refusal | None:
    """Why the bot may not post in this group (None when it may), with the fix in words."""
    if member.status in (ChatMember.LEFT, ChatMember.BANNED):
        return "removed", "the bot is not a member of this group: add it again"
    if isinstance(member, ChatMemberRestricted) and not member.can_send_messages:
        return (
            "restricted",
            "the bot may not send messages here: lift its restriction (group settings)",
        )
    if chat.type == Chat.CHANNEL and not (
        isinstance(member, ChatMemberAdministrator) and member.can_post_messages
    ):
        return (
            "restricted",
            "the bot may not post in this channel: make it an administrator who can post",
        )
    members_may_send = chat.permissions is None or chat.permissions.can_send_messages is not False
    if member.status == ChatMember.MEMBER and not members_may_send:
        return (
            "restricted",
            "members may not send messages in this group: make the bot an administrator",
        )
    return None
