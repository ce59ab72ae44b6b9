"""Files the fake server holds: what users send and what the bot uploads, reachable by file_id
(getFile) and by file path (the download URL), as on Telegram's file servers."""

from __future__ import annotations

import itertools
import struct
import zlib
from dataclasses import dataclass
from typing import Final

from bot.sandbox.fake_api.wire import ApiError, JSONDict, Params, Upload


def _tiny_png() -> bytes:
    """Build a valid 1x1 PNG so photo round-trips carry real image bytes without a fixture."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


#: Small valid PNG used as the default photo.
TINY_PNG: Final = _tiny_png()
TINY_OGG: Final = b"OggS\x00\x02" + b"\x00" * 26
TINY_MP4: Final = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
TINY_WEBP: Final = (
    b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00"
    b"\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes | None
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 0


class FileStore:
    """Every file the server knows, by file_id and by download path."""

    def __init__(self) -> None:
        self.by_id: dict[str, StoredFile] = {}
        self.by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def register(
        self,
        data: bytes | None,
        folder: str,
        ext: str,
        file_name: str | None,
        mime_type: str | None,
    ) -> StoredFile:
        n = next(self._counter)
        stored = StoredFile(
            file_id=f"AgACAgQAAxkB{n:012d}",
            file_unique_id=f"AQAD{n:08d}",
            data=data,
            file_path=f"{folder}/file_{n}.{ext}",
            file_name=file_name,
            mime_type=mime_type,
        )
        self.by_id[stored.file_id] = stored
        self.by_path[stored.file_path] = stored
        return stored

    def input_file(
        self, params: Params, name: str, folder: str, ext: str, mime_type: str | None
    ) -> StoredFile:
        """An uploaded part, a known file_id, or a URL (stored without bytes)."""
        value = params.get(name)
        if isinstance(value, Upload):
            return self.register(
                value.data, folder, ext, value.filename, value.content_type or mime_type
            )
        if isinstance(value, str) and value:
            known = self.by_id.get(value)
            if known is not None:
                return known
            if value.startswith(("http://", "https://")):
                file_name = value.rsplit("/", 1)[-1] or None
                return self.register(None, folder, ext, file_name, mime_type)
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        raise ApiError(400, f"Bad Request: there is no {name} in the request")


def photo_sizes(stored: StoredFile) -> list[JSONDict]:
    """The PhotoSize array of a Message: one size is enough for the bot."""
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 800,
            "height": 600,
            "file_size": stored.size,
        }
    ]


def document_json(stored: StoredFile) -> JSONDict:
    """The Document object of a Message."""
    doc: JSONDict = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }
    if stored.file_name is not None:
        doc["file_name"] = stored.file_name
    if stored.mime_type is not None:
        doc["mime_type"] = stored.mime_type
    return doc
