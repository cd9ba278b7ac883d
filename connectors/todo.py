"""To-do lists: todo.txt files (todo.txt, done.txt, NAME.todo.txt) and Markdown task lists
(todo.md, tasks.md, NAME.todo.md, NAME.tasks.md: `- [ ] open`, `- [x] done`). One document per
task, saying whether it is open or done, with its due date, priority, projects, contexts and the
headings it sits under, so "what is still open on my list about the move?" finds it.

todo.txt (https://github.com/todotxt/todo.txt): `x 2026-03-05 2026-03-01 (A) Call the movers
+move @phone due:2026-03-04`. Markdown: `📅 2026-03-20` (Obsidian Tasks) or `due:2026-03-20` or
`@due(2026-03-20)` for the due date, `✅ 2026-03-05` for the day it was done, `#tags`.
Each task is dated (metadata["timestamp"]) by its due date, else the day it was done, else the day
it was created; a task with no date has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from functools import partial
from pathlib import Path

from connectors.calendar import option_zone
from connectors.records import lines, record_document
from connectors.spoken import spoken_day
from memex.connector import Connector, isolated
from memex.documents import Element, SourceDocument, failing_document
from memex.errors import ParseError

TODO_TXT = re.compile(r"(?i)^(todo|done)\.txt$|\.todo\.txt$")
TASKS_MD = re.compile(r"(?i)^(todo|tasks)\.(md|markdown)$|\.(todo|tasks)\.(md|markdown)$")
MAX_BYTES = 16 * 1024 * 1024

_DATE = r"(\d{4}-\d\d-\d\d)"
_TXT_DONE = re.compile(r"^x (?:" + _DATE + r" )?(?:" + _DATE + r" )?")
_TXT_OPEN = re.compile(r"^(?:\(([A-Z])\) )?(?:" + _DATE + r" )?")
_KEY_VALUE = re.compile(r"(?<!\S)([A-Za-z][\w-]*):(\S+)")
_PROJECT = re.compile(r"(?<!\S)\+(\S+)")
_CONTEXT = re.compile(r"(?<!\S)@(\w[\w./-]*)(?!\()")
_MD_TASK = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+\[([ xX/-])\]\s+(.*)$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_DUE = re.compile(r"(?:📅|🗓️?)\s*" + _DATE + r"|(?<!\S)due:" + _DATE + r"|@due\(" + _DATE + r"\)")
_MD_DONE = re.compile(r"✅\s*" + _DATE + r"|@done\(" + _DATE + r"\)")
_MD_CREATED = re.compile(r"➕\s*" + _DATE)
_MD_SCHEDULED = re.compile(r"(?:⏳|🛫)\s*" + _DATE)
_MD_PRIORITY = {"🔺": "highest", "⏫": "high", "🔼": "medium", "🔽": "low", "⏬": "lowest"}
_MD_TAG = re.compile(r"(?<![\w&#])#([\w/-]*[A-Za-z_][\w/-]*)")
_MD_NOISE = re.compile(r"(?:📅|🗓️?|✅|➕|⏳|🛫)\s*\d{4}-\d\d-\d\d|[🔺⏫🔼🔽⏬]|🔁[^📅✅➕⏳🛫]*")


@dataclass
class Task:
    text: str  # what to do, without the markers
    done: bool
    line: int
    due: date | None = None
    completed: date | None = None
    created: date | None = None
    scheduled: date | None = None
    priority: str = ""
    projects: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    section: tuple[str, ...] = ()  # headings (Markdown) and parent tasks it sits under
    cancelled: bool = False


def is_todo_file(path: Path) -> bool:
    return bool(TODO_TXT.search(path.name) or TASKS_MD.search(path.name))


class TodoConnector(Connector):
    """A todo.txt file or a Markdown task list (also found inside any folder).
    Option: timezone (IANA name) for the dates (default: local)."""

    name = "todo"

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return is_todo_file(path)

    def load(self) -> Iterator[SourceDocument]:
        path = Path(self.target).expanduser().resolve()
        try:
            zone = option_zone(self.options)
            if path.stat().st_size > MAX_BYTES:
                raise ParseError("to-do list too large (memex reads up to 16 MiB)")
            tasks = isolated(partial(read_tasks, path))  # in a worker, under the parsers' limits
            if not tasks:
                raise ParseError("no tasks in this list")
        except (ParseError, OSError, ValueError) as exc:
            yield failing_document(
                source_id=f"todo:{path.as_posix()}",
                uri=path.as_posix(),
                connector="todo",
                attributes={"connector": "todo", "kind": "list", "path": path.as_posix()},
                reason=getattr(exc, "strerror", None) or str(exc),
            )
            return
        seen: dict[str, int] = {}
        for task in tasks:
            key = " ".join(task.text.lower().split())
            seen[key] = seen.get(key, 0) + 1
            yield task_document(path, task, key if seen[key] == 1 else f"{key}#{seen[key]}", zone)


def read_tasks(path: Path) -> list[Task]:
    text = path.read_bytes().decode("utf-8-sig", "replace")
    return read_markdown(text) if TASKS_MD.search(path.name) else read_todo_txt(text)


def read_todo_txt(text: str) -> list[Task]:
    tasks = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        done_match = _TXT_DONE.match(line)
        if done_match:
            completed, created = done_match.group(1), done_match.group(2)
            rest = line[done_match.end() :]
            priority = ""
            found_priority = re.search(r"(?<!\S)pri:([A-Z])(?!\S)", rest)  # kept by some clients
            if found_priority:
                priority = found_priority.group(1)
        else:
            open_match = _TXT_OPEN.match(line)
            priority, created, completed = open_match.group(1) or "", open_match.group(2), None
            rest = line[open_match.end() :]
        values = {k.lower(): v for k, v in _KEY_VALUE.findall(rest) if not v.startswith("//")}
        description = _KEY_VALUE.sub(lambda m: "" if not m.group(2).startswith("//") else m.group(0), rest)
        tasks.append(
            Task(
                text=" ".join(description.split()) or line,
                done=bool(done_match),
                line=number,
                due=_date(values.get("due")),
                completed=_date(completed),
                created=_date(created),
                scheduled=_date(values.get("t")),
                priority=priority,
                projects=_PROJECT.findall(rest),
                contexts=_CONTEXT.findall(rest),
            )
        )
    return tasks


def read_markdown(text: str) -> list[Task]:
    """`- [ ]` / `- [x]` items, with the headings and parent items above them. `[-]` is a
    cancelled task, `[/]` one in progress (open)."""
    tasks: list[Task] = []
    headings: list[tuple[int, str]] = []
    parents: list[tuple[int, str]] = []  # (indent, task text) of enclosing tasks
    fence = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        if fence:
            continue
        heading = _MD_HEADING.match(raw)
        if heading:
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
            parents = []
            continue
        item = _MD_TASK.match(raw)
        if not item:
            continue
        indent, mark, body = len(item.group(1).expandtabs(4)), item.group(2), item.group(3)
        parents = [p for p in parents if p[0] < indent]
        task = markdown_task(body, mark, number)
        task.section = tuple(h for _, h in headings) + tuple(p for _, p in parents)
        tasks.append(task)
        parents.append((indent, task.text))
    return tasks


def markdown_task(body: str, mark: str, number: int) -> Task:
    def first(pattern: re.Pattern[str]) -> str | None:
        found = pattern.search(body)
        return next((g for g in found.groups() if g), None) if found else None

    priority = next((name for symbol, name in _MD_PRIORITY.items() if symbol in body), "")
    text = _MD_DUE.sub("", _MD_DONE.sub("", _MD_NOISE.sub("", body)))
    return Task(
        text=" ".join(text.split()) or body.strip(),
        done=mark in "xX",
        cancelled=mark == "-",
        line=number,
        due=_date(first(_MD_DUE)),
        completed=_date(first(_MD_DONE)),
        created=_date(first(_MD_CREATED)),
        scheduled=_date(first(_MD_SCHEDULED)),
        priority=priority,
        tags=_MD_TAG.findall(body),
    )


def task_document(path: Path, task: Task, key: str, zone: tzinfo) -> SourceDocument:
    posix = path.as_posix()
    state = "cancelled" if task.cancelled else "done" if task.done else "open"
    elements = [Element(text=f"{state.capitalize()} task: {task.text}")]
    elements += lines(
        ("Due", _long(task.due)),
        ("Done on", _long(task.completed)),
        ("Scheduled", _long(task.scheduled)),
        ("Created", _long(task.created)),
        ("Priority", task.priority),
        ("Projects", task.projects),
        ("Contexts", task.contexts),
        ("Tags", task.tags),
        ("List", " > ".join((path.name, *task.section))),
    )
    when = task.due or (task.completed if task.done else None) or task.scheduled or task.created
    metadata: dict[str, object] = {"status": state, "line": task.line}
    if when is not None:
        metadata["timestamp"] = datetime.combine(when, time(), tzinfo=zone).timestamp()
    if task.due is not None:
        metadata["due"] = task.due.isoformat()
    attributes: dict[str, object] = {
        "connector": "todo",
        "kind": "todo",
        "path": posix,
        "field.status": state,
    }
    for name, values in (("projects", task.projects), ("contexts", task.contexts), ("tags", task.tags)):
        if values:
            attributes[f"field.{name}"] = list(values)
    if task.priority:
        attributes["field.priority"] = task.priority
    return record_document(
        source_id=f"todo:{posix}#{key}",
        uri=f"{posix}#L{task.line}",
        title=f"{task.text[:120]} ({state}{', due ' + task.due.isoformat() if task.due else ''})",
        connector="todo",
        attributes=attributes,
        elements=elements,
        metadata=metadata,
    )


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _long(day: date | None) -> str | None:
    if day is None:
        return None
    return spoken_day(day)
