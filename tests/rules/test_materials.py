"""The type of a material comes from its bytes, never from its name; the limits name the file and the rule."""

import io
import zipfile

from rules.materials import Limits, Upload, display_name, problems, sniff
from schemas.vocabulary import MaterialType


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "x")
    return buffer.getvalue()


def test_sniffed_from_the_content() -> None:
    assert sniff(b"%PDF-1.7\n...") == MaterialType.PDF
    assert sniff(b"\xff\xd8\xff\xdb rest") == MaterialType.JPEG
    assert sniff(b"\x89PNG\r\n\x1a\n rest") == MaterialType.PNG
    assert sniff(_zip(["OFD.xml", "Doc_0/Document.xml"])) == MaterialType.OFD
    # a zip without OFD.xml (a .docx), a broken zip, HTML, an executable: refused whatever the name says
    for content in (_zip(["word/document.xml"]), b"PK\x03\x04broken", b"<html>", b"MZ\x90\x00", b" %PDF-1.4"):
        assert sniff(content) is None


def test_problems_name_each_file_and_the_rule() -> None:
    limits = Limits(max_file_bytes=1024, max_files=2)
    found = problems([Upload("a.pdf", b"%PDF-" + b"0" * 2000), Upload("b.pdf", b"hello"), Upload("c.png", b"")],
                     limits, already=0)  # fmt: skip
    assert found[0] == "材料数量超过上限：每个办件最多 2 个文件（已有 0 个，本次 3 个）"
    assert found[1].startswith("“a.pdf”太大（2 KB）：单个文件不得超过 1 KB")
    assert found[2].startswith("“b.pdf”的文件类型不允许：仅接受 PDF、JPEG、PNG、OFD 文件")
    assert found[3] == "“c.png”是空文件：请重新选择"
    assert problems([Upload("ok.pdf", b"%PDF-1.4")], limits, already=1) == []


def test_display_name_keeps_the_last_part_without_invisible_characters() -> None:
    assert display_name("C:\\Users\\张三\\申报书.pdf") == "申报书.pdf"
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("发票\u202egpj.pdf") == "发票gpj.pdf"
    assert display_name("") == "未命名文件"
    long = display_name("长" * 300 + ".pdf")
    assert len(long) == 100 and long.endswith(".pdf")
