"""How the painkiller question looks on the patient's phone, step by step.

The question has up to three steps, kept in the check-in's ``selection`` (the conversation's
position lives in the database, never in memory):

* classes: tick the painkillers taken (☐/☑, like the red-flag checklist), "None", "Done";
* days: "on how many of these 7 days?", buttons 1 to 7 (after classes were ticked or typed);
* check: a typed reply read only approximately ("topalgique ?"): "did you mean ...?" yes/no.

``selection`` holds the ticked class ids, after ``@days`` or ``@check`` for those steps; the
check step also keeps the names read (``~name``) and the days already said (``#3``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.domain.painkillers import CLASS_IDS, DAYS_IN_WEEK
from bot.domain.protocol import Question
from bot.i18n import t
from bot.services.ports import Button, OutgoingMessage

DAYS_STEP = "@days"
CHECK_STEP = "@check"
_NAME = "~"
_DAYS = "#"


@dataclass(frozen=True)
class PainkillerStep:
    """Where the patient is in the painkiller question."""

    kind: str
    """``classes``, ``days`` or ``check``."""
    classes: tuple[str, ...]
    names: tuple[str, ...] = ()
    days: int | None = None


def step_of(selection: Sequence[str] | None) -> PainkillerStep:
    """Decode the check-in's ``selection`` into the step of the painkiller question."""
    items = list(selection or [])
    kind = "classes"
    if items and items[0] == DAYS_STEP:
        kind, items = "days", items[1:]
    elif items and items[0] == CHECK_STEP:
        kind, items = "check", items[1:]
    classes = tuple(i for i in items if i in CLASS_IDS)
    names = tuple(i[1:] for i in items if i.startswith(_NAME))
    days = next((int(i[1:]) for i in items if i.startswith(_DAYS) and i[1:].isdigit()), None)
    return PainkillerStep(kind, classes, names, days)


def days_selection(classes: Iterable[str]) -> list[str]:
    """``selection`` for the days step."""
    return [DAYS_STEP, *sorted(set(classes), key=CLASS_IDS.index)]


def check_selection(classes: Iterable[str], *, names: Iterable[str], days: int | None) -> list[str]:
    """``selection`` for the check step."""
    kept = [CHECK_STEP, *sorted(set(classes), key=CLASS_IDS.index)]
    kept += [_NAME + name for name in names]
    if days is not None:
        kept.append(f"{_DAYS}{days}")
    return kept


def class_label(class_id: str, language: str) -> str:
    """A painkiller class as the patient reads it on a button."""
    labels = {
        "none": t(language, "None"),
        "paracetamol": t(language, "Paracetamol (Doliprane, Dafalgan…)"),
        "nsaid": t(language, "Anti-inflammatory (ibuprofen, Advil…)"),
        "weak_opioid": t(language, "Weak opioid (tramadol, codeine, Ixprim, Lamaline…)"),
        "strong_opioid": t(language, "Strong opioid (morphine, oxycodone, Skenan…)"),
        "other": t(language, "Other"),
    }
    return labels.get(class_id, class_id)


def short_class_label(class_id: str, language: str) -> str:
    """A painkiller class in a few words (what was understood, staff views)."""
    labels = {
        "none": t(language, "no painkiller"),
        "paracetamol": t(language, "paracetamol"),
        "nsaid": t(language, "anti-inflammatory"),
        "weak_opioid": t(language, "weak opioid"),
        "strong_opioid": t(language, "strong opioid"),
        "other": t(language, "other painkiller"),
    }
    return labels.get(class_id, class_id)


def describe_use(classes: Iterable[str], days: int | None, language: str) -> str:
    """'paracetamol, weak opioid — 3 days out of 7' (or 'no painkiller')."""
    ordered = sorted(set(classes), key=lambda c: CLASS_IDS.index(c) if c in CLASS_IDS else 99)
    if not ordered:
        return short_class_label("none", language)
    text = ", ".join(short_class_label(c, language) for c in ordered)
    if days is not None:
        text += " — " + t(language, "{days} days out of 7", days=days)
    return text


def render_painkillers(
    question: Question,
    *,
    language: str,
    checkin_id: int,
    index: int,
    selection: list[str] | None,
    prefix_text: str | None,
) -> OutgoingMessage:
    """The painkiller question at its current step, with its buttons."""
    step = step_of(selection)
    base = f"a:{checkin_id}:{index}:"
    if step.kind == "days":
        text = t(language, "On how many of these 7 days did you take them?")
        values = list(range(1, DAYS_IN_WEEK + 1))
        buttons: tuple[tuple[Button, ...], ...] = (
            tuple(Button(str(v), f"{base}{v}") for v in values[:4]),
            tuple(Button(str(v), f"{base}{v}") for v in values[4:]),
        )
    elif step.kind == "check":
        names = ", ".join(step.names) or describe_use(step.classes, None, language)
        text = t(
            language,
            "Just to be sure: did you take {names} ({classes})?",
            names=names,
            classes=describe_use(step.classes, None, language),
        )
        buttons = ((Button(t(language, "Yes"), f"{base}y"), Button(t(language, "No"), f"{base}n")),)
    else:
        text = question.text.get(language)
        ticked = set(step.classes)
        rows = []
        for i, class_id in enumerate(CLASS_IDS):
            mark = "☑ " if class_id in ticked else "☐ "
            rows.append(
                (Button(mark + class_label(class_id, language), f"t:{checkin_id}:{index}:{i}"),)
            )
        rows.append((Button(t(language, "None"), f"n:{checkin_id}:{index}"),))
        rows.append((Button(t(language, "Done"), f"d:{checkin_id}:{index}"),))
        buttons = tuple(rows)
    if prefix_text:
        text = f"{prefix_text}\n{text}"
    return OutgoingMessage(text=text, buttons=buttons)
