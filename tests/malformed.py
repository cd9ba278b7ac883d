"""Hostile files made for the tests: zip bombs (forged and real), billion-laughs XML, and damaged
copies of real documents (truncations, byte flips, wrong extensions, huge lines, empty files)."""

from __future__ import annotations

import io
import random
import shutil
import struct
import zipfile
from pathlib import Path

MiB = 1024 * 1024

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>\n"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<r>&xxe;</r>\n'
)
MINIMAL_DOCX = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
        '2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.document.main+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    ),
    "word/document.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Falcon 2 sensor notes</w:t></w:r></w:p>'
        "</w:body></w:document>"
    ),
}


def write_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def forge_sizes(path: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    """Rewrite the central directory so that each named member declares (unpacked, packed) sizes
    it does not have: what a bomb declares, without writing gigabytes."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        name = bytes(data[at + 46 : at + 46 + name_len]).decode()
        if name in sizes:
            unpacked, packed = sizes[name]
            struct.pack_into("<II", data, at + 20, packed, unpacked)
        at = data.find(b"PK\x01\x02", at + 46 + name_len + extra_len + comment_len)
    path.write_bytes(bytes(data))
    return path


def zeros_member(size: int) -> bytes:
    return bytes(size)


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: max(1, int(len(data) * fraction))]


def flipped(data: bytes, seed: int, flips: int = 16) -> bytes:
    """`flips` bytes XORed with random values, past the first 64 (the magic number stays, so the
    file still looks like its format)."""
    rng = random.Random(seed)
    out = bytearray(data)
    if len(out) <= 64:
        return bytes(b ^ 0xFF for b in out)
    for _ in range(flips):
        i = rng.randrange(64, len(out))
        out[i] ^= rng.randrange(1, 256)
    return bytes(out)


def hostile_specials(folder: Path, sample_docx: Path | None) -> dict[str, str]:
    """Write the hand-made hostile files; {name: what it is}."""
    made: dict[str, str] = {}

    def put(name: str, data: bytes, what: str) -> None:
        (folder / name).write_bytes(data)
        made[name] = what

    put("empty.docx", b"", "0-byte docx")
    put("empty.pdf", b"", "0-byte pdf")
    put("empty.md", b"", "0-byte md")
    put("lol.xml", BILLION_LAUGHS, "billion laughs")
    put("xxe.xml", EXTERNAL_ENTITY, "external entity")
    # Zip bombs: one real (20 MiB of zeros in ~20 KB), one forged past the entry limit.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in MINIMAL_DOCX.items():
            archive.writestr(name, data)
        archive.writestr("word/media/blank.bin", zeros_member(20 * MiB))
    put("ratio-bomb.docx", buffer.getvalue(), "zip bomb (ratio)")
    forged = write_zip(folder / "size-bomb.xlsx", {**MINIMAL_DOCX, "xl/big.xml": b"<a/>" * 1000})
    forge_sizes(forged, {"xl/big.xml": (4000 * MiB, 2000 * MiB)})
    made["size-bomb.xlsx"] = "zip bomb (declared size)"
    laughs = {**MINIMAL_DOCX, "word/document.xml": BILLION_LAUGHS}
    write_zip(folder / "laughs.docx", laughs)
    made["laughs.docx"] = "billion laughs inside a docx"
    write_zip(folder / "laughs.epub", {"mimetype": "application/epub+zip", "content.opf": BILLION_LAUGHS})
    made["laughs.epub"] = "billion laughs inside an epub"
    # Wrong extensions: a PDF called .docx, a zip called .pdf, text called .xlsx, a docx called .txt.
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    put("pdf-named.docx", pdf, "a PDF named .docx")
    put("zip-named.pdf", (folder / "laughs.docx").read_bytes(), "a zip named .pdf")
    put("text-named.xlsx", b"just some words\n" * 10, "text named .xlsx")
    if sample_docx is not None:
        shutil.copyfile(sample_docx, folder / "docx-named.txt")
        made["docx-named.txt"] = "a docx named .txt"
    # Huge lines: 2 MB of words on one line, 2 MB without a single space, a 1 MB csv cell.
    put("huge-line.txt", b"Lisbon office " * (2 * MiB // 14), "a 2 MB line of words")
    put("huge-token.md", b"x" * (2 * MiB), "a 2 MB line without spaces")
    put("huge-line.csv", b"a,b\n" + b"1," + b"9" * MiB + b"\n", "a 1 MB csv cell")
    return made
