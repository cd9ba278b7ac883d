"""Text in pictures: photos of whiteboards, receipts and letters, and scanned PDF pages, read
offline by rapidocr (PP-OCR models as ONNX, shipped in its PyPI package; `pip install
'memex[media]'`). Runs in the sandboxed parse workers.

Only lines read with confidence at least MIN_CONFIDENCE, holding a word of three letters or
digits, are kept: a photo of a beach yields nothing rather than noise. Images are refused before
their pixels are decoded when they are larger than MAX_PIXELS (decompression bombs: a small file
that unpacks to gigabytes); a PDF page is rendered at most MAX_PIXELS, whatever size it claims.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import warnings
from pathlib import Path
from typing import Any

from memex.documents import Element
from memex.errors import ParseError, UnsupportedFormat

NEEDS_EXTRA = "needs memex[media]: pip install 'memex[media]'"
MIN_CONFIDENCE = 0.8
MAX_PIXELS = 60_000_000  # 60 megapixels: a big phone photo is 48; a bomb is thousands
MAX_SIDE = 4096  # larger images are scaled down before OCR (text stays readable)
PDF_DPI = 200
SECONDS_PER_MEGAPIXEL = 4.0  # time limit of one image's OCR, plus BASE_SECONDS
BASE_SECONDS = 60.0
_WORD = re.compile(r"\w{3,}")


def available() -> bool:
    """True when rapidocr and onnxruntime are installed (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in ("rapidocr", "onnxruntime"))


def engine_name() -> str:
    return "rapidocr" if available() else "none"


def heic_readable() -> bool:
    return importlib.util.find_spec("pillow_heif") is not None


def time_limit(pixels: int) -> float:
    return BASE_SECONDS + SECONDS_PER_MEGAPIXEL * pixels / 1e6


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header; ParseError for unreadable images and bombs."""
    image = open_image(path)
    with image:
        return image.size


def open_image(path: Path) -> Any:
    """The image, opened lazily (header only), refused above MAX_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() in (".heic", ".heif") and heic_readable():
        import pillow_heif

        pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ParseError(f"refused: the image is too large to read ({short(exc)})") from None
    except UnidentifiedImageError:
        raise ParseError(f"not a readable {path.suffix.lower()} image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ParseError(f"not a readable {path.suffix.lower()} image ({short(exc)})") from None
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        image.close()
        raise ParseError(
            f"refused: the image says it is {width:,} × {height:,} pixels, more than "
            f"{MAX_PIXELS // 1_000_000} megapixels (a decompression bomb?)"
        )
    return image


def image_text(path: Path) -> list[str]:
    """The lines of text in an image file."""
    from PIL import ImageOps

    with open_image(path) as image:
        try:
            image.seek(0)  # the first frame of a multi-page TIFF or an animation
            picture = ImageOps.exif_transpose(image).convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise ParseError(f"corrupt or truncated {path.suffix.lower()} image ({short(exc)})") from None
    return picture_text(picture)


def picture_text(picture: Any, engine: Any = None) -> list[str]:
    """The lines of text in a decoded RGB picture (PIL), read with confidence."""
    import numpy as np

    if max(picture.size) > MAX_SIDE:
        picture.thumbnail((MAX_SIDE, MAX_SIDE))
    engine = engine or _engine()
    try:
        result = engine(np.asarray(picture))
    except Exception as exc:  # onnxruntime's errors carry a traceback: keep its last line
        last = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
        raise ParseError(f"OCR failed ({last[0][:300]})") from None
    lines = []
    for text, score in zip(result.txts or (), result.scores or (), strict=False):
        text = " ".join(str(text).split())
        if score >= MIN_CONFIDENCE and _WORD.search(text):
            lines.append(text)
    return lines


def pdf_pages(path: Path, numbers: list[int]) -> list[Element]:
    """OCR text of the given pages (1-based) of a PDF, rendered with pypdfium2."""
    if not available():
        raise UnsupportedFormat(f"no text layer (a scanned document?); reading scans {NEEDS_EXTRA}")
    import pypdfium2

    out, engine = [], _engine()
    try:
        document = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as exc:
        raise ParseError(f"corrupt or truncated .pdf file ({short(exc)})") from None
    try:
        for number in numbers:
            page = document[number - 1]
            width, height = page.get_size()
            scale = PDF_DPI / 72
            if width * height * scale * scale > MAX_PIXELS:
                scale = (MAX_PIXELS / max(1.0, width * height)) ** 0.5
            picture = page.render(scale=scale).to_pil().convert("RGB")
            lines = picture_text(picture, engine)
            if lines:
                out.append(Element(text="\n".join(lines), page=number))
    finally:
        document.close()
    return out


def _engine() -> Any:
    """rapidocr's engine, made for each picture or PDF (about half a second) and let go after
    it, so that a long-lived parse worker stays within its address-space limit."""
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise UnsupportedFormat(f"reading text in images {NEEDS_EXTRA}") from None
    # rapidocr logs each model it loads and each empty page; only its errors matter here
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    engine = RapidOCR()
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return engine


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
