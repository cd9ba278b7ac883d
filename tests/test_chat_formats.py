"""Chat exports parse into the right messages: the parser authors' own fixtures compared with the
outputs they expect (chat-miner target.json, chat-analytics *.ts), WhatsApp's locale layouts,
placeholders, and which files each connector claims."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.chat import DiscordConnector, MessengerConnector, TelegramConnector, WhatsAppConnector
from connectors.chat.model import Conversation
from connectors.chat.slack import SlackConnector
from connectors.chat.whatsapp import date_order
from memex.errors import ParseError
from tests.conftest import data_dir

CONNECTORS = (SlackConnector, WhatsAppConnector, TelegramConnector, DiscordConnector, MessengerConnector)


def conversations(connector, path: Path) -> list[Conversation]:
    return [c for c in connector(str(path)).conversations(path) if isinstance(c, Conversation)]


def authored(conversation: Conversation) -> list[tuple[str, str, str]]:
    """(UTC ISO time, author, text with whitespace collapsed) of the messages people wrote."""
    return [
        (
            datetime.fromtimestamp(m.ts, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            m.author,
            " ".join(m.text.split()),
        )
        for m in conversation.messages
        if not m.system
    ]


def claimant(path: Path):
    claimed = [c for c in CONNECTORS if (c.claims_folder(path) if path.is_dir() else c.claims_file(path))]
    assert len(claimed) <= 1, f"{path} is claimed by {claimed}"
    return claimed[0] if claimed else None


def target(path: Path) -> list[tuple[str, str, str]]:
    return sorted(
        (t["timestamp"], t["author"], " ".join(t["message"].split())) for t in json.loads(path.read_text())
    )


# --- chat-miner: target.json is the expected parse ------------------------------------------


def test_every_fixture_is_claimed_by_exactly_one_chat_connector():
    base = data_dir("chat_export_fixtures")
    expected = {
        "chat-analytics/discord/DM_2A_2M.json": "discord",
        "chat-analytics/discord/GC_3A_5M.json": "discord",
        "chat-analytics/discord/SV_5A_5M.json": "discord",
        "chat-analytics/messenger/2A_7M.json": "messenger",
        "chat-analytics/telegram/DM_2A_7M.json": "telegram",
        "chat-analytics/whatsapp/2A_5M.txt": "whatsapp",
        "chat-analytics/whatsapp/4A_11M.txt": "whatsapp",
        "chat-analytics/whatsapp/4A_11M.zip": "whatsapp",
        "chat-miner/instagram/test_export.json": "messenger",
        "chat-miner/signal/test_export.txt": "whatsapp",  # the same line layout
        "chat-miner/telegram/test_batch_export.json": "telegram",
        "chat-miner/telegram/test_single_export.json": "telegram",
        "chat-miner/whatsapp/test_[mmddyy]_24hrs.txt": "whatsapp",
        "chat-miner/whatsapp/test_ddmmyy_24hrs.txt": "whatsapp",
        "chat-miner/whatsapp/test_mmddyy_24hrs.txt": "whatsapp",
        "chat-miner/whatsapp/test_mmddyyyy_12hrs.txt": "whatsapp",
        "chat-miner/whatsapp/test_yyyymmdd_24hrs.txt": "whatsapp",
    }
    found = {}
    for path in sorted(base.rglob("*")):
        connector = claimant(path) if path.is_file() else None
        if connector is not None:
            found[path.relative_to(base).as_posix()] = connector.name
    assert found == expected
    # the expectations themselves (target.json, *.ts, SOURCE.md) are not chats
    assert claimant(base / "chat-miner/whatsapp/target.json") is None


@pytest.mark.parametrize(
    "name",
    [
        "test_ddmmyy_24hrs",
        "test_mmddyy_24hrs",
        "test_[mmddyy]_24hrs",
        "test_mmddyyyy_12hrs",
        "test_yyyymmdd_24hrs",
    ],
)
def test_chat_miner_whatsapp_locales_match_target(name):
    folder = data_dir("chat_export_fixtures") / "chat-miner" / "whatsapp"
    (conversation,) = conversations(WhatsAppConnector, folder / f"{name}.txt")
    # chat-miner leaves out system lines ("created group", "You were added") and "John Doe:."
    # (no ": "), which memex keeps as system lines
    assert sorted(authored(conversation)) == target(folder / "target.json")
    assert [m.text for m in conversation.messages if m.system] == [
        "John Doe:.",
        '+12 345 578 created group "Groupname"',
        "You were added",
    ]
    assert conversation.kind == "group"


@pytest.mark.parametrize("name", ["test_single_export.json", "test_batch_export.json"])
def test_chat_miner_telegram_matches_target(name):
    folder = data_dir("chat_export_fixtures") / "chat-miner" / "telegram"
    (conversation,) = conversations(TelegramConnector, folder / name)
    assert sorted(authored(conversation)) == target(folder / "target.json")


def test_chat_miner_signal_and_instagram_match_target():
    folder = data_dir("chat_export_fixtures") / "chat-miner"
    (signal,) = conversations(WhatsAppConnector, folder / "signal" / "test_export.txt")
    assert sorted(authored(signal)) == target(folder / "signal" / "target.json")
    (instagram,) = conversations(MessengerConnector, folder / "instagram" / "test_export.json")
    assert instagram.platform == "instagram"
    assert sorted(authored(instagram)) == target(folder / "instagram" / "target.json")


# --- chat-analytics: *.json.ts / *.txt.ts hold the expected parse -----------------------------


def _ts_authors(ts: str, common: str) -> dict[str, str]:
    """author id -> name, from an `authors: [...]` block and the PAUTHOR_* constants."""
    constants = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(
            r'export const (PAUTHOR_\w+): PAuthor = \{\s*id: "([^"]+)",\s*name: "([^"]+)"', common
        )
    }
    block = re.search(r"authors: (\[.*?\])(?:\.map\(.*?\))?,\n    (?:messages|calls)", ts, re.S).group(1)
    authors = {}
    for constant in re.findall(r"PAUTHOR_\w+", block):
        author_id, name = constants[constant]
        authors[author_id] = name
    for m in re.finditer(r'\{\s*(?:id: "([^"]+)",\s*)?name: "([^"]+)"', block):
        authors[m.group(1) or m.group(2)] = m.group(2)
    if not authors:  # ["Alice", "Bob"].map((name) => ({ name, ... }))
        authors = {name: name for name in re.findall(r'"([^"]+)"', block)}
    return {k: re.sub(r"\s*#\d+$", "", v) for k, v in authors.items()}  # Discord's "name#1234"


def _ts_messages(ts: str, authors: dict[str, str], common: str) -> list[tuple[str, str]]:
    """(author name, text) of the expected messages that have a text."""
    ids = {c: i for c, i in re.findall(r'export const (PAUTHOR_\w+): PAuthor = \{\s*id: "([^"]+)"', common)}
    section = ts.split("messages: [", 1)[1].split("\n    ],", 1)[0]
    out = []
    for item in re.split(r"\n {8}\{\n", section):
        text = re.search(r'textContent:\s*("(?:[^"\\]|\\.)*")', item)
        author = re.search(r'authorId: (?:(PAUTHOR_\w+)\.id|"([^"]+)")', item)
        if text and author:
            author_id = ids[author.group(1)] if author.group(1) else author.group(2)
            out.append((authors[author_id], " ".join(json.loads(text.group(1)).split())))
    return out


CHAT_ANALYTICS = {
    # fixture: (connector, messages memex counts)
    "discord/DM_2A_2M.json": (DiscordConnector, 2),
    "discord/GC_3A_5M.json": (DiscordConnector, 5),  # 3 messages and 2 channel changes
    "discord/SV_5A_5M.json": (DiscordConnector, 4),  # one of its 5 entries is a duplicate id
    "telegram/DM_2A_7M.json": (TelegramConnector, 7),  # 6 messages and 1 "joined" event
    "whatsapp/2A_5M.txt": (WhatsAppConnector, 5),
    "whatsapp/4A_11M.txt": (WhatsAppConnector, 11),
    "whatsapp/4A_11M.zip": (WhatsAppConnector, 11),
    "messenger/2A_7M.json": (MessengerConnector, 7),
}


@pytest.mark.parametrize("name", sorted(CHAT_ANALYTICS))
def test_chat_analytics_fixtures_match_their_expectations(name):
    folder = data_dir("chat_export_fixtures") / "chat-analytics"
    connector, count = CHAT_ANALYTICS[name]
    path = folder / name
    expectation = (folder / f"{name}.ts").read_text()
    if "export * from" in expectation:  # 4A_11M.zip.ts re-exports 4A_11M.txt.ts
        expectation = (folder / f"{name.rsplit('.', 1)[0]}.txt.ts").read_text()
    common = (path.parent / "Common.ts").read_text()
    authors = _ts_authors(expectation, common)
    (conversation,) = conversations(connector, path)
    people = {m.author for m in conversation.messages if not m.system}
    assert people == set(authors.values())
    ours = [(m.author, " ".join(m.text.split())) for m in conversation.messages if not m.system]
    expected = _ts_messages(expectation, authors, common)
    assert expected and all(pair in ours for pair in expected), (expected, ours)
    if connector is WhatsAppConnector:  # chat-analytics counts the lines people wrote...
        assert len(ours) == count
    else:  # ...and every other record but calls
        calls = [m for m in conversation.messages if m.system and re.search(r"\bcall\b", m.text)]
        assert len(conversation.messages) - len(calls) == count
    # the filename's "<n>M" is chat-analytics' count; only SV_5A_5M differs (a duplicate entry)
    assert int(re.search(r"(\d+)M", name).group(1)) == count + (name == "discord/SV_5A_5M.json")


def test_discord_details():
    folder = data_dir("chat_export_fixtures") / "chat-analytics" / "discord"
    (server,) = conversations(DiscordConnector, folder / "SV_5A_5M.json")
    assert (server.workspace, server.channel, server.kind) == ("DefleMask", "general-chiptune", "channel")
    lines = [m.line() for m in server.messages]
    assert lines == [
        "[2018-05-20 16:09] Deleted User: This message has been edited and written by a deleted user. (edited)",
        "[2018-05-20 16:09] mlomb: The author of this message does not have the nickname property, and "
        "should fallback to use name.",
        "[2018-05-20 16:09] mlomb: This message has attachments and stickers. (sticker: Laugh) [file: unknown.png]",
        "[2018-05-20 16:09] mlomb: This message has reactions. (reactions: paul 3, ❤ 2)",
    ]
    (group,) = conversations(DiscordConnector, folder / "GC_3A_5M.json")
    assert group.kind == "group"
    assert [m.line() for m in group.messages][-2:] == [
        "[2023-01-18 20:12] mlomb: woah nice :custom_emoji: (reply to theplant)",
        "[2023-03-03 14:47] mlomb started a call that lasted 113 minutes.",
    ]


def test_telegram_and_messenger_details():
    base = data_dir("chat_export_fixtures") / "chat-analytics"
    (chat,) = conversations(TelegramConnector, base / "telegram" / "DM_2A_7M.json")
    assert (chat.channel, chat.kind, chat.key) == ("Bob", "dm", "700000000")
    assert [m.line() for m in chat.messages] == [
        "[2019-07-05 16:55] Bob joined telegram",
        "[2019-07-12 16:55] Bob: https://google.com 👀",
        "[2022-03-08 13:07] Alice: hello world",
        "[2022-05-09 22:23] Bob: world?",
        "[2022-05-09 23:26] Alice: blah blah",
        "[2022-06-10 22:06] Alice: [photo not included]",
        "[2022-06-10 22:06] Alice: [photo not included]",
        "[2023-08-10 23:11] Alice phone call 56 s",  # shown in the export's local time ("date")
    ]
    assert chat.messages[-1].ts == 1691719862  # ...while the epoch is date_unixtime's
    (messenger,) = conversations(MessengerConnector, base / "messenger" / "2A_7M.json")
    assert [m.line() for m in messenger.messages][:4] == [
        "[2014-11-05 00:27] Bob: [file: 123123123123123.jpg]",
        "[2014-11-05 00:27] Bob: (sticker)",
        "[2014-11-05 00:28] Alice: [file: audioclip11111.mp4]",
        "[2014-11-05 00:28] Bob: [file: blabla.docx]",
    ]


# --- WhatsApp layouts ----------------------------------------------------------------------------


def _chat(tmp_path: Path, text: str, name: str = "WhatsApp Chat with Ana.txt", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    "text",
    [
        # Android, US: month first, 12 h with a narrow no-break space before PM
        "9/12/20, 11:55\u202fPM - Ana: Olá\n9/12/20, 11:58\u202fPM - Rui: boa noite\n",
        # Android, day first, 24 h
        "12/09/2020, 23:55 - Ana: Olá\n12/09/2020, 23:58 - Rui: boa noite\n",
        # iOS, German: dots, seconds, brackets
        "[12.09.20, 23:55:10] Ana: Olá\n[12.09.20, 23:58:02] Rui: boa noite\n",
        # iOS, English 12 h with seconds, left-to-right marks
        "\u200e[9/12/20, 11:55:10 PM] Ana: Olá\n[9/12/20, 11:58:02 PM] Rui: boa noite\n",
        # year first
        "2020-09-12, 23:55 - Ana: Olá\n2020-09-12, 23:58 - Rui: boa noite\n",
        # Spanish 12 h
        "12/09/2020, 11:55 p. m. - Ana: Olá\n12/09/2020, 11:58 p. m. - Rui: boa noite\n",
    ],
)
def test_whatsapp_locales(tmp_path, text):
    path = _chat(tmp_path, text)
    assert WhatsAppConnector.claims_file(path)
    (conversation,) = conversations(WhatsAppConnector, path)
    assert [(m.clock.strftime("%Y-%m-%d %H:%M"), m.author, m.text) for m in conversation.messages] == [
        ("2020-09-12 23:55", "Ana", "Olá"),
        ("2020-09-12 23:58", "Rui", "boa noite"),
    ]
    assert (conversation.channel, conversation.kind, conversation.workspace) == ("Ana", "dm", "whatsapp")


def test_whatsapp_multiline_placeholders_edits_and_system_lines(tmp_path):
    text = (
        "12/09/2020, 23:50 - Messages and calls are end-to-end encrypted. Tap to learn more.\n"
        '12/09/2020, 23:51 - Ana created group "Kestrel: field trip"\n'
        "12/09/2020, 23:55 - Ana: first line\nsecond line\n\nafter a blank line\n"
        "12/09/2020, 23:56 - Rui: <Media omitted>\n"
        "12/09/2020, 23:57 - Rui: image omitted\n"
        "12/09/2020, 23:58 - Ana: IMG-20200912-WA0001.jpg (file attached)\nthe trail map\n"
        "12/09/2020, 23:59 - Eva: This message was deleted\n"
        "13/09/2020, 00:01 - Eva: see you at 8 <This message was edited>\n"
    )
    (conversation,) = conversations(WhatsAppConnector, _chat(tmp_path, text, "_chat.txt"))
    assert conversation.channel == tmp_path.name  # "_chat.txt" is named after its folder
    assert conversation.kind == "group"
    assert [m.line() for m in conversation.messages] == [
        "[2020-09-12 23:50] Messages and calls are end-to-end encrypted. Tap to learn more.",
        '[2020-09-12 23:51] Ana created group "Kestrel: field trip"',
        "[2020-09-12 23:55] Ana: first line\nsecond line\n\nafter a blank line",
        "[2020-09-12 23:56] Rui: [media omitted]",
        "[2020-09-12 23:57] Rui: [image omitted]",
        "[2020-09-12 23:58] Ana: the trail map [file: IMG-20200912-WA0001.jpg]",
        "[2020-09-12 23:59] Eva: [deleted]",
        "[2020-09-13 00:01] Eva: see you at 8 (edited)",
    ]


def test_whatsapp_day_month_order():
    assert date_order(["13/01/20", "01/02/20"], us_clock=True) == "dmy"
    assert date_order(["01/13/20", "01/02/20"], us_clock=False) == "mdy"
    assert date_order(["2020/01/13"], us_clock=False) == "ymd"
    # every date fits both: the order under which time does not run backwards wins...
    assert date_order(["01/02/20", "01/03/20", "02/01/20"], us_clock=False) == "mdy"
    assert date_order(["02/01/20", "03/01/20", "01/02/20"], us_clock=True) == "dmy"
    # ...then the clock: "PM" as the US writes it reads month first, anything else day first
    assert date_order(["1/2/21"], us_clock=True) == "mdy"
    assert date_order(["1/2/21"], us_clock=False) == "dmy"
    with pytest.raises(
        ParseError, match="unrecognised date format: '13/01/20' reads only day first and '01/13/20'"
    ):
        date_order(["13/01/20", "01/13/20"], us_clock=False)


def test_whatsapp_encodings(tmp_path):
    text = "12/09/2020, 23:55 - Inês: Olá, até amanhã\n12/09/2020, 23:58 - João: Obrigado\n"
    for encoding in ("utf-8", "utf-8-sig", "utf-16"):
        path = _chat(tmp_path, text, f"WhatsApp Chat with Inês {encoding}.txt", encoding)
        assert WhatsAppConnector.claims_file(path), encoding
        (conversation,) = conversations(WhatsAppConnector, path)
        assert [m.line() for m in conversation.messages] == [
            "[2020-09-12 23:55] Inês: Olá, até amanhã",
            "[2020-09-12 23:58] João: Obrigado",
        ], encoding
    # not UTF-8 (a file re-saved by an editor): the encoding is guessed, the messages are all there
    path = _chat(tmp_path, text, "WhatsApp Chat with Ines.txt", "cp1252")
    (conversation,) = conversations(WhatsAppConnector, path)
    assert [m.clock.strftime("%H:%M") for m in conversation.messages] == ["23:55", "23:58"]
    assert conversation.messages[1].text == "Obrigado"


def test_whatsapp_bad_dates_are_reported_and_the_rest_goes_on(tmp_path):
    text = "31/01/2020, 10:00 - Ana: ok\n31/02/2020, 10:05 - Ana: no such day\n01/02/2020, 25:10 - Rui: nor hour\n"
    docs = list(WhatsAppConnector(str(_chat(tmp_path, text))).load())
    assert [d.uri for d in docs] == ["whatsapp://Ana/2020-01-31T10:00", "whatsapp://Ana/lines"]
    assert [e.text for e in docs[0].parse()] == ["[2020-01-31 10:00] Ana: ok"]
    with pytest.raises(
        ParseError,
        match=r"^2 message\(s\) skipped: line 2: 31/02/2020 10:05 is not a valid date; "
        r"line 3: 01/02/2020 25:10 is not a valid date$",
    ):
        docs[1].parse()


def test_whatsapp_contradictory_dates_fail_the_file_with_the_reason(tmp_path):
    path = _chat(tmp_path, "13/01/20, 10:00 - Ana: a\n01/13/20, 10:00 - Ana: b\n")
    (doc,) = WhatsAppConnector(str(path)).load()
    assert doc.uri == path.as_posix()
    with pytest.raises(ParseError, match="whatsapp: unrecognised date format"):
        doc.parse()


def test_whatsapp_zip_with_a_document_attached(tmp_path):
    archive = tmp_path / "WhatsApp Chat - Field team.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(
            "_chat.txt",
            "[12/09/2020, 23:55:01] Ana: \u200e<attached: 00000003-route.txt>\n"
            "[12/09/2020, 23:56:01] Rui: \u200e<attached: 00000004-PHOTO-2020-09-12.jpg>\n",
        )
        z.writestr("00000003-route.txt", "Meet at the Largo do Carmo at 07:30, then drive to Sintra.")
        z.writestr("00000004-PHOTO-2020-09-12.jpg", b"\xff\xd8\xff not really a photo")
    assert WhatsAppConnector.claims_file(archive)
    docs = list(WhatsAppConnector(str(archive)).load())
    assert [d.uri for d in docs] == [
        "whatsapp://Field team/2020-09-12T23:55",
        "whatsapp://Field team/2020-09-12T23:55/00000003-route.txt",  # the photo is only named
    ]
    assert [e.text for e in docs[0].parse()] == [
        "[2020-09-12 23:55] Ana: [file: 00000003-route.txt]",
        "[2020-09-12 23:56] Rui: [file: 00000004-PHOTO-2020-09-12.jpg]",
    ]
    assert docs[1].isolated and [e.text for e in docs[1].parse()] == [
        "Meet at the Largo do Carmo at 07:30, then drive to Sintra."
    ]


# --- what is claimed, and what is not ------------------------------------------------------------


def test_ordinary_files_are_not_claimed(tmp_path):
    notes = _chat(
        tmp_path, "Meeting notes\n\n12/03/2021, 10:00 - kickoff\nWe agreed on the plan.\n", "notes.txt"
    )
    log = _chat(
        tmp_path,
        "12/03/2021, 10:00 - service started\n" + "all good\n" * 60 + "12/03/2021, 10:05 - x\n",
        "a.txt",
    )
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"messages": [{"id": 1, "text": "hi"}], "guild": "x"}))
    other_zip = tmp_path / "photos.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "Holiday photos from Sintra")
    only_channels = tmp_path / "half-slack"
    only_channels.mkdir()
    (only_channels / "channels.json").write_text("[]")
    for path in (notes, log, data, other_zip, only_channels):
        assert claimant(path) is None, path


def test_connector_for_dispatches_top_level_targets(tmp_path):
    from memex.ingest.plugins import connector_for

    base = data_dir("chat_export_fixtures")
    assert connector_for(str(data_dir("chat_slack_export"))).name == "slack"
    assert connector_for(str(base / "chat-analytics/whatsapp/2A_5M.txt")).name == "whatsapp"
    assert connector_for(str(base / "chat-analytics/telegram/DM_2A_7M.json")).name == "telegram"
    assert connector_for(str(base / "chat-analytics/discord/SV_5A_5M.json")).name == "discord"
    assert connector_for(str(base / "chat-miner/whatsapp/target.json")).name == "files"


# --- bad input, and files that come with an export ---------------------------------------------


def test_a_broken_export_file_is_reported_and_the_folder_goes_on(fake_memex, tmp_path):
    from tests.conftest import memex_with_fakes

    folder = tmp_path / "chats"
    folder.mkdir()
    fixtures = data_dir("chat_export_fixtures") / "chat-analytics"
    shutil.copy(fixtures / "telegram" / "DM_2A_7M.json", folder / "telegram.json")
    shutil.copy(fixtures / "discord" / "GC_3A_5M.json", folder / "discord.json")
    truncated = (fixtures / "discord" / "SV_5A_5M.json").read_bytes()[:3000]  # a cut-off download
    (folder / "server.json").write_bytes(truncated)
    broken_telegram = (
        (fixtures / "telegram" / "DM_2A_7M.json").read_text().replace('"id": 3645,', '"id": 3645,,')
    )
    (folder / "result-broken.json").write_text(broken_telegram)
    memex = memex_with_fakes(tmp_path / "home")
    try:
        report = memex.ingest([str(folder)])
    finally:
        memex.close()
    assert {f.uri: f.reason for f in report.failures} == {
        f"{folder.as_posix()}/result-broken.json": "telegram: result-broken.json is not valid JSON "
        "(line 41, column 24: Expecting property name enclosed in double quotes)",
        f"{folder.as_posix()}/server.json": "discord: server.json is not valid JSON "
        "(line 82, column 13: Unterminated string starting at)",
    }
    assert len(report.indexed) == 6 + 3  # the Telegram DM's windows and the Discord group's


def test_telegram_export_folder_reads_the_files_it_references(tmp_path):
    export = tmp_path / "DataExport_2026-10-01"
    (export / "files").mkdir(parents=True)
    (export / "photos").mkdir()
    (export / "files" / "route.txt").write_text("Meet at Largo do Carmo at 07:30.")
    (export / "photos" / "photo_1.jpg").write_bytes(b"\xff\xd8\xff")
    (export / "result.json").write_text(
        json.dumps(
            {
                "name": "Field team",
                "type": "private_group",
                "id": 42,
                "messages": [
                    {"id": 1, "type": "message", "date": "2026-05-01T07:00:00", "date_unixtime": "1777615200",
                     "from": "Ana", "from_id": "user1", "file": "files/route.txt", "text": "the route"},
                    {"id": 2, "type": "message", "date": "2026-05-01T07:01:00", "date_unixtime": "1777615260",
                     "from": "Rui", "from_id": "user2", "photo": "photos/photo_1.jpg", "text": "",
                     "reply_to_message_id": 1, "edited": "2026-05-01T07:02:00",
                     "reactions": [{"type": "emoji", "count": 2, "emoji": "👍"}]},
                    {"id": 3, "type": "message", "date": "2026-05-01T07:03:00", "from": "Eva",
                     "file": "../../../etc/hostname", "text": "sneaky"},
                ],
            }
        )
    )  # fmt: skip
    assert TelegramConnector.claims_folder(export) and claimant(export) is TelegramConnector
    docs = list(TelegramConnector(str(export)).load())
    assert [d.uri for d in docs] == [
        "telegram://Field team/2026-05-01T07:00",
        "telegram://Field team/2026-05-01T07:00/route.txt",
    ]
    assert [e.text for e in docs[0].parse()] == [
        "[2026-05-01 07:00] Ana: the route [file: route.txt]",
        "[2026-05-01 07:01] Rui: (edited) (reply to Ana) [file: photo_1.jpg] (reactions: 👍 2)",
        "[2026-05-01 07:03] Eva: sneaky [file: hostname]",  # named, never read: it is outside the export
    ]
    assert docs[0].attributes["kind"] == "group"
    assert [e.text for e in docs[1].parse()] == ["Meet at Largo do Carmo at 07:30."]


def test_discord_media_folder_and_unknown_message_types(tmp_path):
    export = tmp_path / "Kestrel - general [1].json"
    media = tmp_path / "Kestrel - general [1].json_Files"
    media.mkdir()
    (media / "notes-1A2B.md").write_text("# Launch checklist\n\nShip Falcon 2 units on 1 November.")
    (media / "cat-3C4D.png").write_bytes(b"\x89PNG")
    message = {
        "id": "10", "type": "Default", "timestamp": "2026-09-14T09:00:00+00:00", "timestampEdited": None,
        "content": "checklist", "author": {"id": "1", "name": "sam", "nickname": "Sam"},
        "attachments": [
            {"id": "a1", "url": "Kestrel%20-%20general%20%5B1%5D.json_Files/notes-1A2B.md", "fileName": "notes.md"},
            {"id": "a2", "url": "Kestrel - general [1].json_Files/cat-3C4D.png", "fileName": "cat.png"},
            {"id": "a3", "url": "../secret.md", "fileName": "secret.md"},
        ],
        "reactions": [],
    }  # fmt: skip
    odd = {
        "id": "11", "type": "GuildBoostTier3", "timestamp": "2026-09-14T09:05:00+00:00",
        "content": "Boosted the server!", "author": {"id": "2", "name": "pat"},
    }  # fmt: skip
    no_time = {"id": "12", "type": "Default", "content": "when?", "author": {"id": "2", "name": "pat"}}
    export.write_text(
        json.dumps(
            {
                "guild": {"id": "7", "name": "Kestrel"},
                "channel": {"id": "1", "type": "GuildTextChat", "name": "general"},
                "messages": [message, odd, no_time],
            }
        )
    )
    assert claimant(media) is DiscordConnector and list(DiscordConnector(str(media)).load()) == []
    docs = list(DiscordConnector(str(export)).load())
    assert [d.uri for d in docs] == [
        "discord://Kestrel/#general/2026-09-14T09:00",
        "discord://Kestrel/#general/2026-09-14T09:00/notes.md",
        "discord://Kestrel/#general/messages",
    ]
    assert [e.text for e in docs[0].parse()] == [
        "[2026-09-14 09:00] Sam: checklist [file: notes.md] [file: cat.png] [file: secret.md]",
        "[2026-09-14 09:05] pat boosted the server!",
    ]
    assert [e.text for e in docs[1].parse()] == ["Launch checklist", "Ship Falcon 2 units on 1 November."]
    with pytest.raises(ParseError, match=r"^1 message\(s\) skipped: #12 has no valid timestamp$"):
        docs[2].parse()


def test_messenger_conversation_folder(tmp_path):
    thread = tmp_path / "messages" / "inbox" / "ana_abc123"
    (thread / "files").mkdir(parents=True)
    (thread / "files" / "plan.txt").write_text("Sintra on Saturday, bring boots.")
    first = {
        "participants": [{"name": "Ana"}, {"name": "Rui"}],
        "messages": [
            {"sender_name": "Rui", "timestamp_ms": 1777615260000, "content": "AtÃ© sÃ¡bado!"},
            {"sender_name": "Ana", "timestamp_ms": 1777615200000,
             "files": [{"uri": "messages/inbox/ana_abc123/files/plan.txt"}]},
        ],
        "title": "Ana", "thread_path": "inbox/ana_abc123",
    }  # fmt: skip
    second = {"participants": first["participants"], "messages": [
        {"sender_name": "Ana", "timestamp_ms": 1777600000000, "content": "Olá", "reactions": [{"reaction": "❤".encode().decode("latin-1")}]}
    ], "title": "Ana", "thread_path": "inbox/ana_abc123"}  # fmt: skip
    (thread / "message_1.json").write_text(json.dumps(first))
    (thread / "message_2.json").write_text(json.dumps(second))
    assert claimant(thread) is MessengerConnector
    docs = list(MessengerConnector(str(thread)).load())
    assert [d.uri for d in docs] == [
        "messenger://Ana/2026-05-01T01:46",
        "messenger://Ana/2026-05-01T06:00",
        "messenger://Ana/2026-05-01T06:00/plan.txt",
    ]
    assert [[e.text for e in d.parse()] for d in docs] == [
        ["[2026-05-01 01:46] Ana: Olá (reactions: ❤ 1)"],
        [
            "[2026-05-01 06:00] Ana: [file: plan.txt]",
            "[2026-05-01 06:01] Rui: Até sábado!",
        ],  # mojibake undone
        ["Sintra on Saturday, bring boots."],
    ]
    assert docs[0].source_id.startswith("messenger:inbox-ana-abc123:")


# --- windows ----------------------------------------------------------------------------------


def _messages(minutes: list[int], text: str = "hello") -> list:
    from connectors.chat.model import Message

    return [
        Message(m * 60.0, datetime(2026, 1, 1) + timedelta(minutes=m), "Ana", text, str(m)) for m in minutes
    ]


def test_windows_close_on_a_gap_a_count_or_a_size():
    from connectors.chat.windows import Limits, cut

    def ids(windows):
        return [[m.id for m in w] for w in windows]

    limits = Limits(gap=30 * 60, max_messages=3, max_chars=1000)
    assert ids(cut(_messages([0, 10, 39, 70, 71, 72, 73, 200]), limits)) == [
        ["0", "10", "39"],  # 29 minutes apart is within the gap...
        ["70", "71", "72"],  # ...31 is not; and 3 messages at most
        ["73"],
        ["200"],
    ]
    assert ids(cut(_messages([0, 100, 200]), limits, use_gap=False)) == [["0", "100", "200"]]  # a thread
    long = _messages([0, 1, 2], text="x" * 400)  # each line is 425 characters with its time and name
    assert ids(cut(long, Limits(max_chars=900))) == [["0", "1"], ["2"]]


def test_window_limits_come_from_options(tmp_path):
    from connectors.chat.windows import Limits

    assert Limits.from_options(
        {"window_gap_minutes": "15", "window_messages": 5, "window_chars": "500"}
    ) == Limits(gap=900, max_messages=5, max_chars=500)
    path = _chat(tmp_path, "12/09/2020, 23:55 - Ana: a\n12/09/2020, 23:58 - Rui: b\n")
    (one,) = WhatsAppConnector(str(path)).load()
    assert [e.text for e in one.parse()] == ["[2020-09-12 23:55] Ana: a", "[2020-09-12 23:58] Rui: b"]
    split = list(WhatsAppConnector(str(path), window_gap_minutes=2).load())
    assert [d.uri for d in split] == ["whatsapp://Ana/2020-09-12T23:55", "whatsapp://Ana/2020-09-12T23:58"]
    (bad,) = WhatsAppConnector(str(path), window_messages="many").load()
    with pytest.raises(ParseError, match=r"^whatsapp: option window_messages='many' is not a number$"):
        bad.parse()


def test_slack_workspace_and_time_zone_options():
    export = data_dir("chat_slack_export")
    doc = next(iter(SlackConnector(str(export), workspace="hdv", timezone="Europe/Lisbon").load()))
    assert doc.uri == "slack://hdv/#datajam/2015-06-06T03:38" and doc.attributes["workspace"] == "hdv"
    assert doc.metadata["timezone"] == "Europe/Lisbon" and doc.metadata["timestamp"] == 1433558319.000002
