"""The fake Bot API refuses what Telegram refuses, so the bot's tests mean something."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bot.botapi import ApiError, parse_entities, parse_html
from bot.botapi import BotApiServer as FakeBotApi


async def call(server: FakeBotApi, method: str, **params: object) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{server.base_url}{server.token}/{method}", data={k: str(v) for k, v in params.items()}
        )


async def test_requests_are_checked_against_the_spec() -> None:
    async with FakeBotApi() as server:
        ok = await call(
            server, "sendMessage", chat_id=1, text="<b>halo</b> &amp; selamat", parse_mode="HTML"
        )
        assert ok.status_code == 200 and ok.json()["result"]["text"] == "halo & selamat"
        unknown = await call(server, "sendTelepathy", chat_id=1)
        assert unknown.status_code == 404
        missing = await call(server, "sendMessage", chat_id=1)
        assert missing.status_code == 400 and "text" in missing.json()["description"]
        extra = await call(server, "sendMessage", chat_id=1, text="x", colour="red")
        assert extra.status_code == 400 and "colour" in extra.json()["description"]
        long = await call(server, "sendMessage", chat_id=1, text="x" * 4097)
        assert long.json()["description"] == "Bad Request: message is too long"
        assert (await call(server, "sendMessage", chat_id=1, text="x" * 4096)).status_code == 200
        data = "d" * 65
        markup = json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": data}]]})
        bad_button = await call(server, "sendMessage", chat_id=1, text="x", reply_markup=markup)
        assert "BUTTON_DATA_INVALID" in bad_button.json()["description"]
        wrong_token = await httpx.AsyncClient().post(f"{server.base_url}1:nope/getMe")
        assert wrong_token.status_code == 401


@pytest.mark.parametrize(
    "html",
    [
        "<div>x</div>",
        "<b>x",
        "a < b",
        "x &nbsp; y",
        "<b><i>x</b></i>",
        "</b>",
        '<span class="merah">x</span>',
        '<a hreff="x">y</a>',
    ],
)
def test_html_telegram_would_refuse(html: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_html(html)
    assert "can't parse entities" in info.value.description


def test_html_telegram_accepts() -> None:
    text = (
        '<b>a</b> <i>b</i> <code>c</code> <a href="https://x">d</a> &lt;e&gt; &quot;f&quot; '
        '<blockquote expandable>g</blockquote> <span class="tg-spoiler">h</span> &#33;'
    )
    assert parse_html(text) == 'a b c d <e> "f" g h !'


async def test_failures_and_blocking_are_injected() -> None:
    async with FakeBotApi() as server:
        server.fail_next("sendMessage", error_code=429, retry_after=5)
        flood = await call(server, "sendMessage", chat_id=1, text="x")
        assert flood.status_code == 429 and flood.json()["parameters"] == {"retry_after": 5}
        assert (await call(server, "sendMessage", chat_id=1, text="x")).status_code == 200
        server.block(2)
        blocked = await call(server, "sendMessage", chat_id=2, text="x")
        assert blocked.status_code == 403 and "blocked" in blocked.json()["description"]
        big = server.store_file(b"x", declared_size=21 * 2**20)
        too_big = await call(server, "getFile", file_id=big["file_id"])
        assert too_big.json()["description"] == "Bad Request: file is too big"


async def test_the_flood_limit_refuses_the_31st_message_of_a_second() -> None:
    """Like Telegram: more than 30 messages in a second bot-wide get 429 with
    retry_after, and the refused ones do not count; off, nothing is refused."""
    clock = [100.0]
    limited = FakeBotApi(flood_limit=30, flood_clock=lambda: clock[0])
    async with limited as server, httpx.AsyncClient() as client:
        url = f"{server.base_url}{server.token}/sendMessage"
        answers = await asyncio.gather(
            *(client.post(url, data={"chat_id": "1", "text": f"m{i}"}) for i in range(40))
        )
        assert sorted(a.status_code for a in answers) == [200] * 30 + [429] * 10
        refused = next(a.json() for a in answers if a.status_code == 429)
        assert refused["description"] == "Too Many Requests: retry after 1"
        assert refused["parameters"] == {"retry_after": 1}
        assert server.flood_refused == 10 and len(server.messages(1)) == 30
        # Not a message: the limit does not count it.
        menu = await call(server, "setMyCommands", commands='[{"command":"a","description":"b"}]')
        assert menu.status_code == 200
        clock[0] += 0.5
        assert (await client.post(url, data={"chat_id": "2", "text": "x"})).status_code == 429
        clock[0] += 0.5  # a second later, the first 30 have left the window
        assert (await client.post(url, data={"chat_id": "2", "text": "x"})).status_code == 200
        assert server.flood_refused == 11
    async with FakeBotApi() as server:
        answers = await asyncio.gather(
            *(call(server, "sendMessage", chat_id=1, text="x") for _ in range(40))
        )
        assert {a.status_code for a in answers} == {200} and server.flood_refused == 0


async def test_send_media_group_is_checked_like_telegram() -> None:
    async with FakeBotApi() as server:
        ids = [server.store_file(f"page {i}".encode())["file_id"] for i in range(11)]

        def album(items: list[dict[str, str]]) -> str:
            return json.dumps(items)

        photos = [{"type": "photo", "media": i} for i in ids]
        ok = await call(server, "sendMediaGroup", chat_id=5, media=album(photos[:3]))
        result = ok.json()["result"]
        assert ok.status_code == 200 and len(result) == 3
        assert len({m["media_group_id"] for m in result}) == 1
        for items, error in (
            (photos[:1], "must be 2-10"),
            (photos, "must be 2-10"),
            ([photos[0], {"type": "document", "media": ids[1]}], "can't be mixed"),
            ([{**photos[0], "caption": "x" * 1025}, photos[1]], "caption is too long"),
            ([photos[0], {"type": "photo", "media": "no-such-file"}], "wrong file identifier"),
            ([photos[0], {"type": "photo", "media": "attach://missing"}], "wrong file"),
        ):
            refused = await call(server, "sendMediaGroup", chat_id=5, media=album(items))
            assert refused.status_code == 400 and error in refused.json()["description"], items
        docs = [{"type": "document", "media": i, "caption": "<b>hal</b>"} for i in ids[:2]]
        ok = await call(
            server, "sendMediaGroup", chat_id=5, media=album(docs[:1] + docs[1:]), parse_mode="HTML"
        )
        assert ok.status_code == 200, ok.json()
        # A file uploaded with the request, named by attach://.
        async with httpx.AsyncClient() as client:
            uploaded = await client.post(
                f"{server.base_url}{server.token}/sendMediaGroup",
                data={
                    "chat_id": "5",
                    "media": album([photos[0], {"type": "photo", "media": "attach://p1"}]),
                },
                files={"p1": ("p1.jpg", b"\xff\xd8 new page", "image/jpeg")},
            )
        assert uploaded.status_code == 200, uploaded.json()
        assert len(server.messages(5)) == 7


async def test_edits_are_refused_as_telegram_refuses_them() -> None:
    now = [1_800_000_000.0]
    async with FakeBotApi(now=lambda: now[0]) as server:
        sent = (await call(server, "sendMessage", chat_id=1, text="tugas")).json()["result"]
        same = await call(
            server, "editMessageText", chat_id=1, message_id=sent["message_id"], text="tugas"
        )
        assert same.json()["description"] == "Bad Request: message is not modified"
        edited = await call(
            server, "editMessageText", chat_id=1, message_id=sent["message_id"], text="selesai"
        )
        assert edited.status_code == 200 and server.messages(1)[0]["text"] == "selesai"
        gone = await call(server, "editMessageText", chat_id=1, message_id=99, text="x")
        assert gone.json()["description"] == "Bad Request: message to edit not found"
        now[0] += 48 * 3600
        old = await call(
            server, "editMessageText", chat_id=1, message_id=sent["message_id"], text="lagi"
        )
        assert old.json()["description"] == "Bad Request: message can't be edited"


async def test_command_menus_are_kept_per_scope_and_refused_like_telegram() -> None:
    async with FakeBotApi() as server:
        menu = json.dumps([{"command": "tugas", "description": "Tugas saya"}])
        person = 2001
        chat = json.dumps({"type": "chat", "chat_id": person})

        # A chat the bot has never seen is not found; one that wrote to it is.
        unseen = await call(server, "setMyCommands", commands=menu, scope=chat)
        assert unseen.json()["description"] == "Bad Request: chat not found"
        await server.push_update(
            {"message": {"message_id": 1, "date": 0, "chat": {"id": person, "type": "private"}}}
        )
        assert (await call(server, "setMyCommands", commands=menu, scope=chat)).status_code == 200
        default = json.dumps([{"command": "bantuan", "description": "Cara bergabung"}])
        assert (await call(server, "setMyCommands", commands=default)).status_code == 200
        assert server.menu_of(person) == ["tugas"] and server.menu_of(7) == ["bantuan"]
        got = await call(server, "getMyCommands", scope=chat)
        assert got.json()["result"] == [{"command": "tugas", "description": "Tugas saya"}]
        assert [c["command"] for c in server.commands] == ["bantuan"]

        refused = {
            json.dumps({"type": "everyone"}): "Unsupported type specified",
            json.dumps({"type": "chat"}): 'Can\'t find field "chat_id"',
            json.dumps({"type": "chat_member", "chat_id": person}): "Invalid user_id specified",
        }
        for scope, why in refused.items():
            for method, extra in (("setMyCommands", {"commands": menu}), ("deleteMyCommands", {})):
                answer = await call(server, method, scope=scope, **extra)
                assert answer.status_code == 400
                assert answer.json()["description"] == (
                    f"Bad Request: can't parse BotCommandScope: {why}"
                )
        admins = json.dumps({"type": "chat_administrators", "chat_id": person})
        private = await call(server, "setMyCommands", commands=menu, scope=admins)
        assert "can't use specified scope in private chats" in private.json()["description"]
        for bad, why in (
            ([{"command": "", "description": "x"}], "command must be non-empty"),
            ([{"command": "a" * 33, "description": "x"}], "command length must not exceed 32"),
            ([{"command": "tugas", "description": " "}], "command description must be non-empty"),
            ([{"command": "Tugas-Saya", "description": "x"}], "BOT_COMMAND_INVALID"),
        ):
            answer = await call(server, "setMyCommands", commands=json.dumps(bad), scope=chat)
            assert answer.json()["description"] == f"Bad Request: {why}"
        assert server.menu_of(person) == ["tugas"]  # nothing refused was kept

        # Deleting the chat's own menu leaves the default.
        assert (await call(server, "deleteMyCommands", scope=chat)).status_code == 200
        assert server.menu_of(person) == ["bantuan"]
        assert (await call(server, "getMyCommands", scope=chat)).json()["result"] == []


async def test_a_held_get_updates_confirms_the_batch_before_it_hangs() -> None:
    """hold_updates: the getUpdates after the next batch confirms it (the
    moment a bot that has not stored it yet loses it), then hangs."""
    import asyncio

    async with FakeBotApi() as server:
        hold = server.hold_updates()
        message = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}
        update_id = await server.push_update({"message": message})
        batch = (await call(server, "getUpdates", timeout=0)).json()["result"]
        assert [u["update_id"] for u in batch] == [update_id]
        held = asyncio.create_task(call(server, "getUpdates", offset=update_id + 1, timeout=0))
        async with asyncio.timeout(5):
            await hold.arrived.wait()
        assert not held.done()
        hold.release.set()
        assert (await held).json()["result"] == []
        # Confirmed: a bot starting afresh is not sent it again.
        assert (await call(server, "getUpdates", timeout=0)).json()["result"] == []


def test_html_becomes_the_entities_a_client_draws() -> None:
    text, entities = parse_entities(
        '<b>Tugas</b> 📄 <i>baru</i>\n<a href="https://contoh.id">tautan</a> <b><i>x</i></b>'
    )
    assert text == "Tugas 📄 baru\ntautan x"
    # Offsets count UTF-16 units, as Telegram's: the emoji is two.
    assert entities == [
        {"type": "bold", "offset": 0, "length": 5},
        {"type": "italic", "offset": 9, "length": 4},
        {"type": "text_link", "offset": 14, "length": 6, "url": "https://contoh.id"},
        {"type": "bold", "offset": 21, "length": 1},
        {"type": "italic", "offset": 21, "length": 1},
    ]
    assert parse_entities("tanpa tanda") == ("tanpa tanda", [])


async def test_a_sent_message_carries_its_entities_and_listeners_hear_it() -> None:
    async with FakeBotApi() as server:
        heard: list[tuple[int, str]] = []
        server.listeners.append(lambda chat, event: heard.append((chat, event["kind"])))
        ok = await call(server, "sendMessage", chat_id=7, text="<b>halo</b>", parse_mode="HTML")
        message = ok.json()["result"]
        assert message["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
        plain = await call(server, "sendMessage", chat_id=7, text="halo")
        assert "entities" not in plain.json()["result"]
        await call(
            server, "editMessageText", chat_id=7, message_id=message["message_id"], text="halo"
        )
        assert "entities" not in server.chats[7][message["message_id"]]
        assert heard == [(7, "message"), (7, "message"), (7, "edit")]
