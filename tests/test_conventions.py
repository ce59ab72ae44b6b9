"""Conventions turned into tests (datasette's habit): settings documented, texts translated,
layers respected, modules and signatures within bounds, no pointer to a file that is not here."""

from __future__ import annotations

import ast
import posixpath
import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.config import Settings
from bot.i18n import _translations, available_languages

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set()
    assert documented - fields == set()


def _source_messages() -> set[str | tuple[str, str]]:
    """Singular msgids, and (singular, plural) pairs for ``tn`` (gettext keys plurals by the
    singular, so the plural form is looked up with ngettext)."""
    keywords = {"t": (2,), "tn": (2, 3), "Refusal": (1,), "LabelTakenError": (1,)}
    messages: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "bot"), keywords=keywords, comment_tags=()
    ):
        if isinstance(message, tuple) and len(message) == 2 and all(message):
            messages.add((message[0], message[1]))
        elif isinstance(message, str) and message:
            messages.add(message)
    return messages


def test_every_interface_text_has_a_french_translation() -> None:
    french = _translations("fr")
    missing = sorted(
        str(m)
        for m in _source_messages()
        if (
            french.ngettext(m[0], m[1], 1) == m[0] or french.ngettext(m[0], m[1], 2) == m[1]
            if isinstance(m, tuple)
            else french.gettext(m) == m
        )
    )
    assert missing == []


def test_catalogs_exist_for_both_languages() -> None:
    assert {"fr", "en"} <= set(available_languages())


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_interface_text_is_in_both_catalogs(language: str) -> None:
    """STAFF_LANGUAGE and the patients' languages pick either catalog: a text missing from the
    English one is shown as its msgid by luck, not by design (translators work from the file)."""
    with (ROOT / "bot" / "locales" / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    listed = {message.id if isinstance(message.id, str) else message.id[0] for message in catalog}
    missing = sorted(
        str(m) for m in _source_messages() if (m if isinstance(m, str) else m[0]) not in listed
    )
    assert missing == []


def test_no_domain_or_service_module_imports_telegram() -> None:
    for layer in ("domain", "db", "services"):
        for path in (ROOT / "bot" / layer).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(from|import) telegram\b", text, re.MULTILINE), path


#: A module longer than this is a house to split before a new maintainer can walk it.
MAX_MODULE_LINES = 1000
#: More positional parameters than this and call sites stop saying what they pass (style:
#: keyword-only arguments beyond ~3).
MAX_POSITIONAL_PARAMETERS = 6
#: Modules allowed above the bound: none since the split of parsing, conversation and the fake
#: server; a new entry needs a reason beside it.
KNOWN_LARGE_MODULES: set[str] = set()
#: Functions allowed above the bound, by qualified name, each with its reason.
KNOWN_LONG_SIGNATURES = {
    # python-telegram-bot's BaseRequest.do_request signature: an override cannot change it.
    "bot.telegram.http.AiohttpRequest.do_request",
}


def _module_lines() -> dict[str, int]:
    """Lines of every module in bot/, by path relative to the repository."""
    return {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((ROOT / "bot").rglob("*.py"))
    }


def _positional_parameters() -> dict[str, int]:
    """Positional (not keyword-only) parameters of every function in bot/, without self/cls,
    by qualified name (``bot.module.Class.method``; nested functions under their parent)."""
    counts: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}.{child.name}"
                positional = [*child.args.posonlyargs, *child.args.args]
                counts[name] = sum(arg.arg not in ("self", "cls") for arg in positional)
                visit(child, name)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}.{child.name}")
            else:
                visit(child, prefix)

    for path in sorted((ROOT / "bot").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        visit(ast.parse(path.read_text(encoding="utf-8")), module)
    return counts


def test_modules_and_signatures_stay_within_bounds() -> None:
    """Shows where the house is heavy (``pytest -s`` prints it) and keeps it from getting worse."""
    lines = _module_lines()
    parameters = _positional_parameters()
    largest = max(lines, key=lines.__getitem__)
    longest = max(parameters, key=parameters.__getitem__)
    heaviest = (
        f"largest module: {largest} ({lines[largest]} lines); longest positional parameter "
        f"list: {longest} ({parameters[longest]} parameters)"
    )
    print(heaviest)

    too_large = {path for path, count in lines.items() if count > MAX_MODULE_LINES}
    too_long = {name for name, count in parameters.items() if count > MAX_POSITIONAL_PARAMETERS}
    assert too_large - KNOWN_LARGE_MODULES == set(), f"split the module ({heaviest})"
    assert too_long - KNOWN_LONG_SIGNATURES == set(), f"make them keyword-only ({heaviest})"
    # A known exception that is fixed leaves the list, so it cannot come back unnoticed.
    assert KNOWN_LARGE_MODULES - too_large == set(), "fixed: remove it from KNOWN_LARGE_MODULES"
    assert KNOWN_LONG_SIGNATURES - too_long == set(), "fixed: remove it from KNOWN_LONG_SIGNATURES"


#: Known dangling pointers, as (file, stem of the missing .md): none are left, keep it so.
KNOWN_DANGLING_REFERENCES: set[tuple[str, str]] = set()
MARKDOWN_MENTION = re.compile(r"[\w./-]*[\w-]\.md\b")
URL = re.compile(r"\w+://\S+")
#: A folder next to the repository: written in two parts so this file does not mention it.
OUTSIDE = "/".join(("..", "shared"))


def _tracked_files() -> set[str]:
    try:
        listing = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    return set(listing.stdout.splitlines())


def test_no_file_points_outside_the_repository_or_to_a_missing_markdown_file() -> None:
    """A pointer is resolved from the file's folder or from the repository root (a bare name may
    live anywhere in the repository); links inside URLs are the web's business, not ours."""
    tracked = _tracked_files()
    basenames = {posixpath.basename(path) for path in tracked}
    outside: list[str] = []
    dangling: set[tuple[str, str]] = set()
    for path in sorted(tracked):
        try:
            text = URL.sub("", (ROOT / path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary, or deleted but not yet staged
        if OUTSIDE in text:
            outside.append(path)
        for mention in MARKDOWN_MENTION.findall(text):
            beside = posixpath.normpath(posixpath.join(posixpath.dirname(path), mention))
            from_root = posixpath.normpath(mention)
            bare = "/" not in mention and mention in basenames
            if not (beside in tracked or from_root in tracked or bare):
                dangling.add((path, posixpath.basename(mention).removesuffix(".md")))
    assert outside == []
    assert dangling - KNOWN_DANGLING_REFERENCES == set()
    assert KNOWN_DANGLING_REFERENCES - dangling == set(), "fixed: remove it from the list"
