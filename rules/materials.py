"""Application materials (申报材料): the type of a file told from its content (magic bytes), never from its name, and
the limits an upload must keep (size per file, files per case). Pure: the bytes come in, the verdicts go out."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from dataclasses import dataclass

from schemas.vocabulary import MaterialType

MIB = 1024 * 1024
PDF_MAGIC = b"%PDF-"
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
MEDIA_TYPES: dict[MaterialType, str] = {
    MaterialType.PDF: "application/pdf",
    MaterialType.JPEG: "image/jpeg",
    MaterialType.PNG: "image/png",
    MaterialType.OFD: "application/ofd",
}
ACCEPTED_TEXT = "、".join(t.label.split(" ")[0] for t in MaterialType)


@dataclass(frozen=True)
class Limits:
    """What one case may hold: bytes per file and files in all (application and 补正 together)."""

    max_file_bytes: int
    max_files: int


@dataclass(frozen=True)
class Upload:
    """One file as it arrived: the name the enterprise's computer gave it and its bytes."""

    name: str
    content: bytes


def sniff(content: bytes) -> MaterialType | None:
    """The material type its first bytes show; an OFD file (GB/T 33190) is a zip whose root holds OFD.xml."""
    if content.startswith(PDF_MAGIC):
        return MaterialType.PDF
    if content.startswith(JPEG_MAGIC):
        return MaterialType.JPEG
    if content.startswith(PNG_MAGIC):
        return MaterialType.PNG
    if content.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = {n.lower() for n in archive.namelist()[:1000]}
        except (zipfile.BadZipFile, ValueError):
            return None
        return MaterialType.OFD if "ofd.xml" in names else None
    return None


def display_name(name: str) -> str:
    """The file name to keep and show: its last path part, NFC, without control or invisible characters, at most
    100 characters (the extension kept)."""
    base = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")).strip()
    if len(base) > 100:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 99 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else base[:100]
    return base or "未命名文件"


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MB" if n >= MIB // 10 else f"{n / 1024:.0f} KB"


def problems(uploads: list[Upload], limits: Limits, *, already: int = 0) -> list[str]:
    """Every reason the files cannot be accepted, in Chinese, each naming the file and the rule (empty: accepted)."""
    found: list[str] = []
    if already + len(uploads) > limits.max_files:
        found.append(
            f"材料数量超过上限：每个办件最多 {limits.max_files} 个文件（已有 {already} 个，本次 {len(uploads)} 个）"
        )
    for upload in uploads:
        name = display_name(upload.name)
        if not upload.content:
            found.append(f"“{name}”是空文件：请重新选择")
        elif len(upload.content) > limits.max_file_bytes:
            found.append(
                f"“{name}”太大（{_size(len(upload.content))}）：单个文件不得超过 {_size(limits.max_file_bytes)}"
            )
        elif sniff(upload.content) is None:
            found.append(f"“{name}”的文件类型不允许：仅接受 {ACCEPTED_TEXT} 文件（按文件内容识别，改扩展名无效）")
    return found
