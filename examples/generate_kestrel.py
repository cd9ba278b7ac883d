"""Regenerate the binary documents of the Kestrel Labs example archive (docx, pptx, xlsx, pdf).

The text documents are written by hand; this script only exists so the binary ones can be
reviewed and rebuilt. Run from the repository root: python examples/generate_kestrel.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent / "kestrel"


def pricing_deck(path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    slides = [
        ("Falcon 2 pricing 2026", ["Sales team only. Do not forward to customers."]),
        (
            "List prices",
            [
                "Falcon 2 sensor: EUR 1,290 per unit",
                "Gateway: EUR 480",
                "Dashboard: EUR 19 per sensor per month",
            ],
        ),
        (
            "Volume discounts",
            [
                "25 to 99 units: 8% off list",
                "100 units or more: 15% off list",
                "Universities get a further 5%",
            ],
        ),
        ("Approval", ["Discounts above 20% need approval from Erin Duarte"]),
    ]
    for title, lines in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = lines[0]
        for line in lines[1:]:
            body.add_paragraph().text = line
    deck.save(path)


def pipeline_sheet(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Pipeline Q3 2026"
    sheet.append(["Customer", "Country", "Units", "Stage", "Owner", "Expected close"])
    for row in [
        ("Museu Natural de Lisboa", "Portugal", 40, "Proposal", "Sam Rivera", "2026-10-15"),
        ("Vogelwarte Sempach", "Switzerland", 120, "Negotiation", "Sam Rivera", "2026-11-30"),
        ("RSPB Scotland", "United Kingdom", 75, "Won", "Sam Rivera", "2026-08-02"),
        ("Parque Nacional de Doñana", "Spain", 200, "Discovery", "Erin Duarte", "2027-01-20"),
    ]:
        sheet.append(row)
    book.save(path)


def performance_review(path: Path) -> None:
    from docx import Document

    doc = Document()
    doc.add_heading("Performance review 2026: Dev Okafor", level=1)
    doc.add_paragraph("Reviewer: Alice Moreau. Confidential: people team and the employee only.")
    doc.add_heading("Strengths", level=2)
    doc.add_paragraph(
        "Dev led the recovery after the harrier outage in March and automated certificate renewal. "
        "Peers describe him as calm and generous with code reviews."
    )
    doc.add_heading("Growth areas", level=2)
    doc.add_paragraph("Delegate more of the on-call tooling work; write design documents earlier.")
    doc.add_heading("Outcome", level=2)
    doc.add_paragraph("Rating: exceeds expectations. Salary increase of 6% from 1 January 2027.")
    doc.save(path)


def board_minutes(path: Path) -> None:
    lines = [
        "Kestrel Labs - Minutes of the board meeting, 24 June 2026",
        "Present: Erin Duarte (CEO), Frank Costa (finance), two investor directors.",
        "1. Acquisition offer. Nordlys Acoustics offered EUR 38 million for the company.",
        "The board declined and asked Erin to keep talks open for a revised offer above EUR 45 million.",
        "2. Series B. The board approved preparing a EUR 12 million Series B for Q1 2027.",
        "3. Layoffs were discussed and rejected.",
        "Project codename for the acquisition talks: HERON. Strictly confidential.",
    ]
    path.write_bytes(_simple_pdf(lines))


def _simple_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a real text layer (Helvetica), written by hand."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = ["BT", "/F1 11 Tf", "50 780 Td", "14 TL"]
    for line in lines:
        stream.append(f"({escape(line)}) Tj T*")
    stream.append("ET")
    content = "\n".join(stream).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


if __name__ == "__main__":
    pricing_deck(ROOT / "sales" / "pricing-2026.pptx")
    pipeline_sheet(ROOT / "sales" / "pipeline-q3-2026.xlsx")
    performance_review(ROOT / "hr" / "performance-review-dev-okafor.docx")
    board_minutes(ROOT / "board" / "board-minutes-2026-06.pdf")
    print("written")
