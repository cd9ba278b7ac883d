"""Database rows against prose in a "life archive": do rows crowd out mail, chat and documents?

    python benchmarks/life_archive_rows.py [--work DIR] [--k 3] [--fresh]

The archive: the houstondatavis Slack export, the notmuch test Maildir, the Perceval mbox samples
and the unstructured documents (../shared/data), plus three SQLite databases (Chinook, Northwind,
Oracle HR), under the personal policy, with the real embedder (all-MiniLM-L6-v2).

1. The prose is ingested once into DIR/prose and copied to DIR/before and DIR/after.
2. before: the databases with every table (`-o tables=*`, what memex read until the selection);
   after: the default selection (no link tables, no tables over 5,000 rows, links listed in the
   rows they link). Each ingest is timed and its chunks counted.
3. In each home: PROSE questions (about mail, chat, documents), how many have a database row in
   the top k, and whether their own source is there; DATABASE questions, whether a row that
   answers them is in the top k, and at which rank.

Homes are kept in DIR (default /tmp/memex-life-archive): a second run only asks the questions
(--fresh starts over). Prints the numbers BENCHMARKS.md quotes ("Databases in a life archive").
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
PROSE = ["chat_slack_export", "email_maildir_notmuch", "email_mbox_samples", "documents_unstructured"]
DATABASES = [
    DATA / "sql_chinook" / "Chinook_Sqlite.sqlite",
    DATA / "sql_northwind" / "northwind.sqlite",
    DATA / "sql_oracle_hr" / "hr.sqlite",
]
SELECTIONS = {"before": {"tables": "*"}, "after": {}}

# (question, what its own source's id or title contains). Written from the data.
PROSE_QUESTIONS = [
    ("data jam venue", "C061A0WJG"),  # #datajam
    ("Who updated the R code for the datajam to show US counties?", "C061A0WJG"),
    ("hospital payments explorer on Tableau", "C061A0WJG"),
    ("converting 100MB time series CSV files to HDF5", "C061A2UGJ"),  # #general
    ("ask a company to sponsor the data visualization meetup", "C064P9LG4"),  # #sponsors
    ("git bash in Console2 on Windows", "C064FGV36"),  # #tools
    ("data stories podcast", "C064MDSSC"),  # #talks
    ("talk on Simpson's paradox and statistical mix effects", "C064MDSSC"),
    ("Texas zip code shapes for the d3 project", "C08QUCF3R"),  # #team-d3
    ("family day with face painting and a petting zoo", "Family Day"),
    ("sponsorship opportunity at the Bioprocessing Summit", "BIOPROCESSING SUMMIT"),
    ("buying the attendee list of the Random Expo", "Random Expo"),
    ("intellectual property protection for startups", "Intellectual Property Protection"),
    ("working with Maildir storage in notmuch", "Working with Maildir storage"),
    ("local caching for cifs with FS-Cache", "cifs"),
    ("presenting GrimoireLab on the Metrics Grimoire list", "GrimoireLab"),
    ("someone joined my Zoom meeting", "Someone has joined your meeting"),
    ("construction work on Regementsgatan in Malmö", "Tack alla trafikanter"),
    ("Stanley Cup wins by team", "stanley-cups"),
    ("Iwan Roberts goals for Norwich City", "norwich-city"),
    ("Vodafone quarterly revenue", "vodafone"),
    ("winter sports in Switzerland", "winter-sports"),
]

# (question, the rows that answer it: source ids or their beginnings).
DATABASE_QUESTIONS = [
    (
        "Which employees report to Andrew Adams?",
        ["db:Chinook_Sqlite/Employee/2", "db:Chinook_Sqlite/Employee/6"],
    ),
    ("What does the Chai product cost?", ["db:northwind/Products/1"]),
    ("Who supplies Chang?", ["db:northwind/Products/2", "db:northwind/Suppliers/1"]),
    ("What is the phone number of the shipper Speedy Express?", ["db:northwind/Shippers/1"]),
    ("What is Steven King's job title?", ["db:hr/employees/100"]),
    (
        "Which album has the track For Those About To Rock (We Salute You)?",
        ["db:Chinook_Sqlite/Track/1", "db:Chinook_Sqlite/Album/1"],
    ),
    (
        "Which playlists is Black Hole Sun in?",
        ["db:Chinook_Sqlite/Track/", "db:Chinook_Sqlite/PlaylistTrack/"],
    ),
    (
        "Which territories does Nancy Davolio cover?",
        # her row lists them; each territory's row names her; the link rows, where read
        [
            "db:northwind/Employees/1",
            "db:northwind/Territories/06897",
            "db:northwind/Territories/19713",
            "db:northwind/EmployeeTerritories/1,",
        ],
    ),
]


def open_memex(home: Path, embedder):
    from memex.access.policyfile import load_policy
    from memex.api.wiring import Memex
    from memex.config import Paths

    return Memex(
        Paths(home), policy=load_policy(ROOT / "policies" / "personal.yaml"), embedder=embedder, writable=True
    )


def ingest(home: Path, embedder, targets: list[Path], options: dict) -> dict:
    memex = open_memex(home, embedder)
    try:
        started = time.perf_counter()
        report = memex.ingest([str(t) for t in targets], options=options)
        seconds = time.perf_counter() - started
        return {
            "seconds": round(seconds, 1),
            "sources": len(report.indexed),
            "chunks": report.chunks_added,
            "failures": len(report.failures),
        }
    finally:
        memex.close()


def is_row(source_id: str) -> bool:
    return source_id.startswith("db:")


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def ask(home: Path, embedder, k: int, share: float) -> dict:
    from memex import index as search_index
    from memex.api.reads import Reads

    search_index.RECORD_SHARE = share  # 0: records rank like any chunk (before the rule)
    memex = open_memex(home, embedder)
    try:
        reads = Reads(memex)
        owner = memex.policy.principal("owner")
        reads.search("warm up", principal=owner, k=k)
        prose = []
        for question, own in PROSE_QUESTIONS:
            hits, seconds = timed(reads.search, question, principal=owner, k=k)
            rows = [h.source_id for h in hits if is_row(h.source_id)]
            found = any(own in f"{h.source_id} {h.title}" for h in hits)
            prose.append({"question": question, "rows": rows, "own_source": found, "seconds": seconds})
        database = []
        for question, answers in DATABASE_QUESTIONS:
            hits, seconds = timed(reads.search, question, principal=owner, k=k)
            ranks = [n for n, h in enumerate(hits, 1) if any(h.source_id.startswith(a) for a in answers)]
            database.append(
                {
                    "question": question,
                    "rank": ranks[0] if ranks else None,
                    "top": hits[0].source_id,
                    "seconds": seconds,
                }
            )
        return {"prose": prose, "database": database}
    finally:
        memex.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/memex-life-archive"))
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    from memex.models.embeddings import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    work: Path = args.work
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "ingests.json"
    ingests = json.loads(results_path.read_text()) if results_path.exists() else {}
    if "prose" not in ingests:
        ingests["prose"] = ingest(work / "prose", embedder, [DATA / p for p in PROSE], {})
        results_path.write_text(json.dumps(ingests, indent=1))
    for name, options in SELECTIONS.items():
        if name not in ingests:
            shutil.rmtree(work / name, ignore_errors=True)
            shutil.copytree(work / "prose", work / name)
            ingests[name] = ingest(work / name, embedder, DATABASES, options)
            results_path.write_text(json.dumps(ingests, indent=1))
    prose = ingests["prose"]
    print(f"prose: {prose['sources']:,} sources, {prose['chunks']:,} chunks in {prose['seconds']:.0f} s")
    print("\n| databases | sources | chunks | ingest seconds |\n|---|---|---|---|")
    for name in SELECTIONS:
        i = ingests[name]  # before: every table; after: the default selection
        print(f"| {name} | {i['sources']:,} | {i['chunks']:,} | {i['seconds']:.0f} |")
    from memex import index as search_index

    rule = search_index.RECORD_SHARE
    runs = {  # (home, RECORD_SHARE)
        "every table, no record rule (before)": ("before", 0.0),
        "default tables, no record rule": ("after", 0.0),
        "every table, record rule": ("before", rule),
        "default tables, record rule (after)": ("after", rule),
    }
    answers = {name: ask(work / home, embedder, args.k, share) for name, (home, share) in runs.items()}
    (work / "answers.json").write_text(json.dumps(answers, indent=1))
    print(
        f"\n| | prose questions with a row in the top {args.k} | prose questions finding their source "
        f"| database questions answered in the top {args.k} | at rank 1 | search ms (median) |\n|---|---|---|---|---|---|"
    )
    for name, result in answers.items():
        intruded = sum(bool(p["rows"]) for p in result["prose"])
        own = sum(p["own_source"] for p in result["prose"])
        answered = sum(d["rank"] is not None for d in result["database"])
        first = sum(d["rank"] == 1 for d in result["database"])
        median = statistics.median(q["seconds"] for q in [*result["prose"], *result["database"]]) * 1000
        print(
            f"| {name} | {intruded} of {len(PROSE_QUESTIONS)} | {own} of {len(PROSE_QUESTIONS)} "
            f"| {answered} of {len(DATABASE_QUESTIONS)} | {first} | {median:.0f} |"
        )
    for name, result in answers.items():
        print(f"\n{name}:")
        for p in result["prose"]:
            if p["rows"] or not p["own_source"]:
                print(
                    f"  prose {p['question']!r}: rows {p['rows']}, own source {'found' if p['own_source'] else 'missed'}"
                )
        for d in result["database"]:
            print(f"  database {d['question']!r}: rank {d['rank']}, first {d['top']}")


if __name__ == "__main__":
    main()
