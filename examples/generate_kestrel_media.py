"""Makes the example archive's voice memo and whiteboard photo (issue 19), with Debian's
espeak-ng and ImageMagick and PyAV: `python examples/generate_kestrel_media.py` from the
repository root. The files are committed; this says how they were made."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.media_support import picture, speak, transcode  # noqa: E402

ENGINEERING = ROOT / "examples" / "kestrel" / "engineering"
MEMO = (
    "Voice memo after the harrier outage. "
    "The replay of the buffered detections finished at six in the evening. "
    "We will test the new gateway in the Lisbon office on Wednesday."
)
BOARD = [
    "Harrier retro, 12 March",
    "Heartbeat sensor every 5 min",
    "Alert after 15 min",
    "Load test on Friday",
]


def main() -> None:
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        wav = speak(MEMO, Path(folder) / "memo.wav")
        transcode(wav, ENGINEERING / "voice-memo-2026-03-12.ogg", created="2026-03-12T18:20:00Z")
        board = picture(Path(folder) / "board.png", BOARD, size="960x460")
        exif = Image.Exif()
        exif[0x010F], exif[0x0110], exif[0x0132] = "Google", "Pixel 8", "2026:03:12 17:05:00"
        Image.open(board).convert("RGB").save(
            ENGINEERING / "whiteboard-2026-03-12.jpg", exif=exif, quality=80
        )


if __name__ == "__main__":
    main()
