"""Development sets for retrieval, generated at run time from the real data in ../shared/data.

    python benchmarks/devsets.py [--data ../shared/data] [--out /tmp/memex-devsets]

Writes one BEIR folder per set (corpus.jsonl, queries.jsonl, qrels/test.tsv), which `memex eval`
and benchmarks/tune_fusion.py read. Nothing of the data is kept in the repository: the corpus is
what memex's own connectors read from the data (mail, chat windows, database records, document
sections), and the questions are drawn from it with a fixed seed, so every run writes the same sets.

Each set mixes kinds of question, so that neither search mode is favoured by construction:
- fragment: a run of words copied from the text (a remembered phrase; lexical search's strength);
- gist: some of a subject's or heading's words, in another order (what one recalls of a title);
- question: a held-out chat question whose discussion is in the archive (the question itself is
  removed from the corpus, so only the conversation's meaning links them; dense search's strength);
- fact: a question about a database record in words of its own ("what is the unit price of
  Chai?", where the record says "UnitPrice: 18").
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have i if in into is it its me my no not of on or "
    "our re so that the their then there these this to was we were what when where which who will "
    "with you your can do does how just any all also more some than about been would could should "
    "get got one out up fwd patch rfc".split()
)
WORD = re.compile(r"[^\W_]{2,}")


@dataclass
class DevSet:
    """A corpus (id -> (title, text)), questions (id -> text) and their relevant documents."""

    name: str
    corpus: dict[str, tuple[str, str]] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, set[str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # query id -> kind of question

    def ask(self, kind: str, text: str, relevant: Iterable[str]) -> None:
        relevant = set(relevant)
        text = " ".join(text.split())
        if not relevant or not text or text in self.queries.values():
            return
        qid = f"{kind}-{len(self.queries) + 1}"
        self.queries[qid] = text
        self.qrels[qid] = relevant
        self.kinds[qid] = kind

    def write(self, folder: Path) -> Path:
        (folder / "qrels").mkdir(parents=True, exist_ok=True)
        with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
            for doc_id, (title, text) in self.corpus.items():
                out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
        with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
            for qid, text in self.queries.items():
                out.write(json.dumps({"_id": qid, "text": text, "kind": self.kinds[qid]}) + "\n")
        with (folder / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter="\t", lineterminator="\n")
            writer.writerow(["query-id", "corpus-id", "score"])
            for qid, relevant in self.qrels.items():
                for doc_id in sorted(relevant):
                    writer.writerow([qid, doc_id, 1])
        return folder


# -- questions from text ----------------------------------------------------------------------
def content_words(text: str) -> list[str]:
    return [w for w in WORD.findall(text) if w.lower() not in STOPWORDS and not w.isdigit()]


def fragment(text: str, rng: random.Random, size: int) -> str | None:
    """`size` consecutive words of one line of `text` (a phrase one remembers), or None."""
    lines = [line.split() for line in text.splitlines() if len(line.split()) >= size + 2]
    lines = [words for words in lines if not words[0].startswith((">", "http"))]
    if not lines:
        return None
    words = rng.choice(lines)
    start = rng.randrange(0, len(words) - size + 1)
    picked = words[start : start + size]
    if len(content_words(" ".join(picked))) < 3 or any("http" in w or "@" in w for w in picked):
        return None
    return " ".join(picked)


def gist(text: str, rng: random.Random, *, keep: float = 0.7, most: int = 6) -> str | None:
    """Some of the content words of `text` (a subject, a heading), shuffled; None if too few."""
    words = list(dict.fromkeys(w.lower() for w in content_words(text)))
    if len(words) < 3:
        return None
    picked = rng.sample(words, min(most, max(2, round(len(words) * keep))))
    rng.shuffle(picked)
    return " ".join(picked)


def misspelt(text: str, rng: random.Random) -> str | None:
    """`text` with one of its longer words mistyped (two letters swapped, one dropped or one
    doubled), as a hurried search box gets it; None if no word is long enough."""
    words = text.split()
    long = [n for n, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long:
        return None
    n = rng.choice(long)
    word, at = words[n], rng.randrange(1, len(words[n]) - 2)
    edit = rng.choice(("swap", "drop", "double"))
    if edit == "swap":
        word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    elif edit == "drop":
        word = word[:at] + word[at + 1 :]
    else:
        word = word[: at + 1] + word[at:]
    return " ".join([*words[:n], word, *words[n + 1 :]]) if word != words[n] else None


def holders(corpus: dict[str, tuple[str, str]], phrase: str) -> set[str]:
    """The documents that hold `phrase` (ignoring case and spacing)."""
    needle = " ".join(phrase.lower().split())
    return {
        doc_id
        for doc_id, (title, text) in corpus.items()
        if needle in " ".join(f"{title} {text}".lower().split())
    }


def _text(document) -> str:
    return "\n".join(element.text for element in document.elements())


def _sample(items: list, rng: random.Random, most: int) -> list:
    return rng.sample(items, most) if len(items) > most else items


# -- mail ---------------------------------------------------------------------------------------
SUBJECT_NOISE = re.compile(r"^((re|fwd?|aw)\s*:\s*|\[[^\]]*\]\s*)+", re.I)


def mail_set(data: Path, rng: random.Random) -> DevSet:
    """Every message memex's mail connector reads from the three mail collections. Questions: a
    subject's gist (relevant: every message of that subject, i.e. the thread), and a phrase from a
    body (relevant: every message that holds it)."""
    from connectors.mail import MailConnector

    out = DevSet("mail")
    subjects: dict[str, set[str]] = defaultdict(set)
    for folder in ("email_maildir_notmuch", "email_mbox_samples", "email_msg_outlook"):
        for path in sorted((data / folder).rglob("*")):
            if not path.is_file() or not MailConnector.accepts(str(path)):
                continue
            for document in _documents(MailConnector(str(path))):
                doc_id = document.source_id.removeprefix("mail:")
                if doc_id in out.corpus or not (text := _text(document)).strip():
                    continue
                out.corpus[doc_id] = (document.title, text)
                subjects[SUBJECT_NOISE.sub("", document.title).strip().lower()].add(doc_id)
    for subject, ids in sorted(subjects.items()):
        if len(ids) <= 10 and (query := gist(subject, rng)) is not None:
            if rng.random() < 0.3 and (typo := misspelt(query, rng)) is not None:
                out.ask("typo", typo, ids)
            else:
                out.ask("gist", query, ids)
    for doc_id in _sample(sorted(out.corpus), rng, 150):
        body = "\n".join(out.corpus[doc_id][1].splitlines()[3:])  # past From/Date/Subject
        if (phrase := fragment(body, rng, rng.choice((5, 7)))) is not None:
            out.ask("fragment", phrase, holders(out.corpus, phrase))
    return out


def _documents(connector) -> Iterator:
    try:
        for document in connector.load():
            try:
                document.elements()
            except Exception:  # noqa: BLE001 - a message memex refuses is no question
                continue
            yield document
    except Exception:  # noqa: BLE001
        return


# -- chat -------------------------------------------------------------------------------------------
LINE = re.compile(r"^\[[^\]]+\] ([^:]{1,60}): (.+)$")


def chat_set(data: Path, rng: random.Random) -> DevSet:
    """The Slack export's conversation windows, as memex's chat connector cuts them. Questions: a
    question someone asked, held out of the corpus (relevant: its window, whose other messages
    discuss it); a phrase from a message; the gist of a message."""
    from connectors.chat.slack import SlackConnector

    out = DevSet("chat")
    held: list[tuple[str, str]] = []
    windows: dict[str, tuple[str, list[str]]] = {}
    for document in _documents(SlackConnector(str(data / "chat_slack_export"))):
        said = [m.group(2) for line in _text(document).splitlines() if (m := LINE.match(line))]
        if not said:
            continue
        windows[document.source_id.removeprefix("slack:")] = (document.title, _text(document).splitlines())
    for doc_id, (title, lines) in windows.items():
        asked = [
            line
            for line in lines
            if (m := LINE.match(line))
            and "?" in m.group(2)
            and len(content_words(m.group(2))) >= 4
            and "http" not in m.group(2)
        ]
        if asked and sum(bool(LINE.match(line)) for line in lines) >= 3:
            question = LINE.match(rng.choice(asked)).group(2)
            held.append((question, doc_id))
            lines = [line for line in lines if not (m := LINE.match(line)) or m.group(2) != question]
        out.corpus[doc_id] = (title, "\n".join(lines))
    for question, doc_id in held:
        out.ask("question", question, {doc_id})
    for doc_id in _sample(sorted(out.corpus), rng, 200):
        said = "\n".join(m.group(2) for line in out.corpus[doc_id][1].splitlines() if (m := LINE.match(line)))
        if rng.random() < 0.5 and (phrase := fragment(said, rng, rng.choice((4, 5, 6)))) is not None:
            out.ask("fragment", phrase, holders(out.corpus, phrase))
        elif (line := max(said.splitlines(), key=lambda x: rng.random() * len(content_words(x)))) and (
            len(content_words(line)) >= 5 and (query := gist(line, rng, keep=0.6))
        ):
            if rng.random() < 0.3 and (typo := misspelt(query, rng)) is not None:
                out.ask("typo", typo, {doc_id})
            else:
                out.ask("gist", query, {doc_id})
    return out


# -- database records ---------------------------------------------------------------------------
DATABASES = ("sql_chinook/Chinook_Sqlite.sqlite", "sql_northwind/northwind.sqlite", "sql_oracle_hr/hr.sqlite")
FIELD = re.compile(r"^([A-Za-z_ ]{2,40}): (.+)$")
REFERENCE = re.compile(r"\s*\([A-Za-z_ ]+ [^)]*\)$")  # "AC/DC (ArtistId 1)" -> "AC/DC"


def records_set(data: Path, rng: random.Random, *, per_table: int = 300) -> DevSet:
    """Records of three databases (Chinook, Northwind, HR) as memex's database connector renders
    them, at most `per_table` from each table. Questions: a fact asked in words of its own
    ("what is the unit price of Chai?"), records with a given value ("customer whose city is
    Prague"), and a record's name alone (a two-word name finds its record)."""
    from connectors.database import DatabaseConnector

    out = DevSet("records")
    facts: dict[str, tuple[str, str, dict[str, str]]] = {}  # doc id -> (table, name, fields)
    for database in DATABASES:
        by_table: dict[str, list] = defaultdict(list)
        for document in _documents(DatabaseConnector(str(data / database))):
            by_table[document.metadata.get("table", "")].append(document)
        for table, documents in sorted(by_table.items()):
            for document in _sample(documents, rng, per_table):
                text = _text(document)
                doc_id = document.source_id.removeprefix("db:")
                out.corpus[doc_id] = (document.title, text)
                fields = {
                    m.group(1): REFERENCE.sub("", m.group(2)).strip()
                    for line in text.splitlines()[1:]
                    if (m := FIELD.match(line))
                }
                name = document.title.split(": ", 1)[-1]
                if "(" not in name and not name.replace(".", "").isdigit():
                    facts[doc_id] = (table, name, fields)
    named: dict[tuple[str, str], set[str]] = defaultdict(set)
    valued: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for doc_id, (table, name, fields) in facts.items():
        named[table, name.lower()].add(doc_id)
        for key, value in fields.items():
            valued[table, key, value.lower()].add(doc_id)
    for doc_id in _sample(sorted(facts), rng, 250):
        table, name, fields = facts[doc_id]
        usable = [
            (key, value)
            for key, value in fields.items()
            if not key.lower().endswith("id") and value and value.lower() != name.lower() and len(value) < 60
        ]
        roll = rng.random()
        if roll < 0.5 and usable:
            key, _ = rng.choice(usable)
            if len(named[table, name.lower()]) <= 3:
                out.ask("fact", f"what is the {_spoken(key)} of {name}?", named[table, name.lower()])
        elif roll < 0.75 and usable:
            key, value = rng.choice(usable)
            if len(valued[table, key, value.lower()]) <= 3 and not value.replace(".", "").isdigit():
                out.ask(
                    "fact",
                    f"{_noun(table)} whose {_spoken(key)} is {value}",
                    valued[table, key, value.lower()],
                )
        elif len(name.split()) in (2, 3) and len(named[table, name.lower()]) <= 3:
            if rng.random() < 0.4 and (typo := misspelt(name, rng)) is not None:
                out.ask("typo", typo, named[table, name.lower()])
            else:
                out.ask("name", name, named[table, name.lower()])
    return out


def _spoken(field_name: str) -> str:
    """A field name in words: UnitPrice -> unit price, first_name -> first name."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", field_name).replace("_", " ").lower()


def _noun(table: str) -> str:
    return _spoken(table).removesuffix("s") or "record"


# -- documents -----------------------------------------------------------------------------------
def documents_set(data: Path, rng: random.Random) -> DevSet:
    """The sections of the long documents in documents_unstructured (a handbook, a book, slides)
    as memex's files connector parses them, plus every other document whole, each under its
    document's title. Questions: what a section is about, in the words of its heading (which the
    corpus leaves out; relevant: the sections under that heading), and a phrase from a section."""
    from connectors.builtin import register_connectors
    from connectors.files import FilesConnector

    connectors: list = []
    register_connectors(connectors.append)
    out = DevSet("documents")
    headings: dict[str, set[str]] = defaultdict(set)
    folder = data / "documents_unstructured"
    for path in sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in (".docx", ".epub", ".pptx", ".md", ".html", ".rst", ".org")
    ):
        for document in _documents(FilesConnector(str(path), others=connectors)):
            sections: dict[tuple[str, ...], list[str]] = defaultdict(list)
            for element in document.elements():
                if element.kind != "title":
                    sections[element.section].append(element.text)
            for number, (section, texts) in enumerate(sections.items()):
                text = "\n".join(texts).strip()
                if len(text) < 40:
                    continue
                doc_id = f"{path.name}#{number}"
                out.corpus[doc_id] = (document.title, text)  # the heading is the question
                if section:
                    headings[section[-1].lower()].add(doc_id)
    for heading, ids in sorted(headings.items()):
        if len(ids) <= 3 and (query := gist(heading, rng, keep=0.8)) is not None:
            out.ask("topic", query, ids)
    for doc_id in _sample(sorted(out.corpus), rng, 200):
        if (phrase := fragment(out.corpus[doc_id][1], rng, rng.choice((4, 6, 8)))) is not None:
            out.ask("fragment", phrase, holders(out.corpus, phrase))
    return out


BUILDERS: dict[str, Callable[[Path, random.Random], DevSet]] = {
    "mail": mail_set,
    "chat": chat_set,
    "records": records_set,
    "documents": documents_set,
}


def generate(data: Path, out: Path, names: Iterable[str] = BUILDERS) -> dict[str, Path]:
    """Write the named sets under `out` (one BEIR folder each); returns their folders."""
    folders = {}
    for name in names:
        devset = BUILDERS[name](data, random.Random(f"{SEED}-{name}"))
        folders[name] = devset.write(out / name)
        kinds = defaultdict(int)
        for kind in devset.kinds.values():
            kinds[kind] += 1
        print(f"{name}: {len(devset.corpus)} documents, {len(devset.queries)} questions {dict(kinds)}")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("/tmp/memex-devsets"))
    parser.add_argument("--only", action="append", choices=sorted(BUILDERS), help="Only these sets.")
    args = parser.parse_args()
    generate(args.data, args.out, args.only or BUILDERS)


if __name__ == "__main__":
    main()
