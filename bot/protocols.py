"""Load protocol files from schedules/ into validated :class:`~bot.domain.protocol.Protocol`.

File I/O only; the meaning checks live in the pure domain.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import ValidationError

try:  # libyaml's parser (PyYAML's wheels have it): pure Python took 0.1-0.3 s per protocol file
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

from bot.domain.protocol import Protocol, check_protocol, format_location
from bot.domain.wording import check_team_told, check_wording
from bot.errors import ConfigError, ProtocolError

DEFAULT_PROTOCOL_ID = "knee-cryoneurolysis"


def default_schedules_dir() -> Path:
    """The repository's schedules/ folder (next to the bot package)."""
    return Path(__file__).resolve().parent.parent / "schedules"


class _UniqueKeyLoader(_SafeLoader):
    """``safe_load`` that refuses a key given twice in one mapping.

    Plain YAML keeps the last value silently: a second ``R3:`` would replace a red flag.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[object, object]:
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=32)
def parse_protocol(text: str, *, source: str) -> Protocol:
    """Validate protocol YAML text; every problem is reported with its path in the file.

    Cached by text (the protocol is frozen): a process that starts the bot again, or a test
    process starting hundreds, reads and checks each file's text once (~30 ms a file)."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        # One line per problem: PyYAML's str() spans several lines with a caret drawing.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}: {problem}" if context else problem
        raise ProtocolError(source, [(where, f"not valid YAML: {detail}")]) from None
    if not isinstance(raw, dict):
        raise ProtocolError(source, [("", "the file must be a mapping of protocol fields")])
    try:
        protocol = Protocol.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (format_location(_without_union_tags(raw, tuple(error["loc"]))), _describe(error))
            for error in exc.errors()
        ]
        raise ProtocolError(source, problems) from None
    problems = [*check_protocol(protocol), *check_wording(protocol), *check_team_told(protocol)]
    if problems:
        raise ProtocolError(source, problems)
    return protocol


def _without_union_tags(raw: object, location: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the tag pydantic puts in a tagged union's path: ``rules[3].threshold.value`` names
    a place that is not in the file; ``rules[3].value`` is."""
    cleaned: list[int | str] = []
    node: object = raw
    for part in location:
        tag = isinstance(node, dict) and part not in node and node.get("kind") == part
        if tag:
            continue
        cleaned.append(part)
        try:
            node = node[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(cleaned)


def _describe(error: object) -> str:
    assert isinstance(error, dict)
    if error.get("type") == "extra_forbidden":
        return "unknown key (check its spelling against the protocol schema)"
    if error.get("type") == "missing":
        return "required field is missing"
    return str(error.get("msg", "invalid value"))


def load_protocol_file(path: Path) -> Protocol:
    """Read and validate one protocol file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolError(str(path), [("", f"cannot read the file: {exc.strerror}")]) from None
    return parse_protocol(text, source=str(path))


class ProtocolRegistry:
    """Every protocol of a folder, by (id, version); episodes keep the version they started with.

    Old versions stay loadable from the database snapshot (see services), so editing a file never
    changes a running follow-up silently.
    """

    def __init__(self, protocols: list[Protocol]) -> None:
        self._by_key: dict[tuple[str, int], Protocol] = {}
        self._latest: dict[str, Protocol] = {}
        #: The ids staff may enrol with; None: every loaded one (see :meth:`enable_only`).
        self._enabled: frozenset[str] | None = None
        for protocol in protocols:
            self.add(protocol)

    def add(self, protocol: Protocol) -> None:
        """Register a protocol version (the highest version of an id is its latest)."""
        self._by_key[(protocol.id, protocol.version)] = protocol
        latest = self._latest.get(protocol.id)
        if latest is None or protocol.version > latest.version:
            self._latest[protocol.id] = protocol

    @classmethod
    def from_dir(cls, folder: Path) -> ProtocolRegistry:
        """Load every *.yaml of ``folder``; one bad file stops everything (fail fast)."""
        files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
        if not files:
            raise ProtocolError(str(folder), [("", "no protocol file (*.yaml) in this folder")])
        return cls([load_protocol_file(path) for path in files])

    def latest(self, protocol_id: str) -> Protocol:
        """The newest version of a protocol (KeyError when unknown)."""
        return self._latest[protocol_id]

    def get(self, protocol_id: str, version: int) -> Protocol | None:
        """A precise version, when loaded."""
        return self._by_key.get((protocol_id, version))

    def enable_only(self, protocol_ids: tuple[str, ...]) -> None:
        """ENABLED_PROTOCOLS: only these ids can be enrolled (and need a physician's approval);
        the others stay loaded, so a proposal can sit on disk and old follow-ups keep theirs."""
        unknown = [pid for pid in protocol_ids if pid not in self._latest]
        if unknown:
            raise ConfigError(
                f"ENABLED_PROTOCOLS names {', '.join(unknown)}, which no protocol file has as its "
                f"id: use some of {', '.join(sorted(self._latest))}"
            )
        self._enabled = frozenset(protocol_ids) if protocol_ids else None

    def ids(self) -> list[str]:
        """The protocol ids that can be enrolled (ENABLED_PROTOCOLS, else every loaded one)."""
        return sorted(pid for pid in self._latest if self.is_enabled(pid))

    def loaded_ids(self) -> list[str]:
        """Every protocol id loaded, enabled or not."""
        return sorted(self._latest)

    def is_enabled(self, protocol_id: str) -> bool:
        """True when staff may enrol a patient with this protocol."""
        return protocol_id in self._latest and (
            self._enabled is None or protocol_id in self._enabled
        )

    def enrollable(self) -> list[Protocol]:
        """The latest version of every protocol that can be enrolled: what must be approved."""
        return [self._latest[pid] for pid in self.ids()]

    def all(self) -> list[Protocol]:
        """Every loaded version."""
        return list(self._by_key.values())
