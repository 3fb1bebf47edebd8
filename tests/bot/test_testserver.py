"""The Bot API test server, driven by a real aiogram Bot and Dispatcher."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    KeyboardButton,
    MenuButtonCommands,
    MenuButtonWebApp,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    WebAppInfo,
)
from aiohttp import ClientSession, FormData
from PIL import Image

from bot.testserver import DOWNLOAD_LIMIT, BotAPIServer, BotSimulator

ALICE = 42
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class PlainHttpSession(AiohttpSession):
    """AiohttpSession without its 250 ms pause on close, which lets TLS connections
    drain; the test server speaks plain HTTP and every test closes a session."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(server: BotAPIServer, token: str | None = None) -> Bot:
    api = TelegramAPIServer.from_base(server.base_url, is_local=False)
    return Bot(
        token or server.sim.token,
        session=PlainHttpSession(api=api),
        default=DefaultBotProperties(parse_mode="HTML"),
    )


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def make_router(seen: list[Message]) -> Router:
    router = Router()

    @router.message(CommandStart(deep_link=True))
    async def start_with_payload(message: Message, command: CommandObject) -> None:
        await message.answer(f"start:{command.args}")

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Bienvenue")

    @router.message(F.text == "/menu")
    async def menu(message: Message) -> None:
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="Oui"), KeyboardButton(text="Non merci")]],
            one_time_keyboard=True,
        )
        await message.answer("Choisissez", reply_markup=keyboard)

    @router.message(F.text)
    async def echo(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(text="👍 J'aime", callback_data="like"),
                    InlineKeyboardButton(text="Site", url="https://example.org"),
                ]
            ]
        )
        text = html.escape(message.text or "")
        await message.answer(f"echo: <b>{text}</b>", reply_markup=keyboard)

    @router.callback_query(F.data == "like")
    async def like(callback: CallbackQuery) -> None:
        assert isinstance(callback.message, Message)
        original = (callback.message.text or "").removeprefix("echo: ")
        await callback.message.edit_text(f"liked: {html.escape(original)}")
        await callback.answer("Merci !")

    @router.message(F.document)
    async def document(message: Message, bot: Bot) -> None:
        assert message.document is not None
        seen.append(message)
        downloaded = await bot.download(message.document)
        assert downloaded is not None
        content = downloaded.read()
        digest = hashlib.sha256(content).hexdigest()[:12]
        await message.answer(f"reçu {message.document.file_name} {len(content)} {digest}")
        name = f"echo-{message.document.file_name}"
        await message.answer_document(BufferedInputFile(content, filename=name), caption="copie")

    @router.message(F.photo)
    async def photo(message: Message, bot: Bot) -> None:
        assert message.photo
        seen.append(message)
        largest = message.photo[-1]
        downloaded = await bot.download(largest)
        assert downloaded is not None
        size = len(downloaded.read())
        await message.answer_photo(
            largest.file_id,
            caption=f"{len(message.photo)} {largest.width}x{largest.height} {size}",
        )

    return router


@pytest.fixture
async def server() -> AsyncIterator[BotAPIServer]:
    async with BotAPIServer() as srv:
        srv.sim.user(ALICE, "Alice", username="alice")
        yield srv


@pytest.fixture
async def bot(server: BotAPIServer) -> AsyncIterator[Bot]:
    client = make_bot(server)
    yield client
    await client.session.close()


@pytest.fixture
def seen() -> list[Message]:
    return []


@pytest.fixture
async def sim(server: BotAPIServer, bot: Bot, seen: list[Message]) -> AsyncIterator[BotSimulator]:
    dispatcher = Dispatcher()
    dispatcher.include_router(make_router(seen))
    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    yield server.sim
    await dispatcher.stop_polling()
    await task


# --------------------------------------------------------------------------- conversation


async def test_text_round_trip_with_inline_keyboard(sim: BotSimulator) -> None:
    sent = sim.send_text(ALICE, "bonjour <toi>")
    reply = await sim.wait_for_bot(ALICE)

    assert reply.from_bot and reply.id == sent.id + 1
    assert reply.text == "echo: <b>bonjour &lt;toi&gt;</b>"  # as the bot sent it
    assert reply.plain_text == "echo: bonjour <toi>"  # as the user reads it
    assert reply.entities == [{"offset": 6, "length": 13, "type": "bold"}]
    assert reply.button_labels == ["👍 J'aime", "Site"]
    assert [m.from_bot for m in sim.chat(ALICE)] == [False, True]
    assert sim.last_bot_message(ALICE) is reply
    assert sim.actions(ALICE) == 1


async def test_press_by_label_edits_and_answers(sim: BotSimulator) -> None:
    sim.send_text(ALICE, "bonjour")
    reply = await sim.wait_for_bot(ALICE)

    with pytest.raises(ValueError, match="not a callback button"):
        sim.press(ALICE, "Site")
    with pytest.raises(LookupError, match="no inline button"):
        sim.press(ALICE, "Annuler")

    sim.press(ALICE, "aime")  # unique substring of "👍 J'aime"
    edited = await sim.wait_for_bot(ALICE, lambda m: m.edited)
    answer = await sim.wait_for_callback_answer(ALICE)

    assert edited is reply
    assert edited.plain_text == "liked: bonjour"
    assert edited.reply_markup is None  # edit_text without a keyboard removes it
    assert answer.text == "Merci !" and not answer.show_alert
    assert answer.message_id == reply.id and answer.data == "like"
    assert sim.callback_answers(ALICE) == [answer]
    assert sim.actions(ALICE) == 2


async def test_deep_link_payload(sim: BotSimulator) -> None:
    sent = sim.send_text(ALICE, "/start abc")
    reply = await sim.wait_for_bot(ALICE)

    assert sent.entities == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert reply.text == "start:abc"


async def test_reply_keyboard_tap(sim: BotSimulator) -> None:
    with pytest.raises(LookupError, match="no reply keyboard"):
        sim.tap_reply_button(ALICE, "Oui")
    sim.send_text(ALICE, "/menu")
    await sim.wait_for_bot(ALICE)
    assert sim.reply_keyboard(ALICE) == [["Oui", "Non merci"]]

    sent = sim.tap_reply_button(ALICE, "merci")
    reply = await sim.wait_for_bot(ALICE)

    assert sent.text == "Non merci"
    assert reply.plain_text == "echo: Non merci"
    assert sim.reply_keyboard(ALICE) is None  # one_time_keyboard hides after use


async def test_document_upload_and_download_are_byte_exact(sim: BotSimulator) -> None:
    content = bytes(range(256)) * 1200
    sim.send_document(ALICE, content, "cv.pdf", "application/pdf")
    copy = await sim.wait_for_bot(ALICE, lambda m: m.document is not None)

    digest = hashlib.sha256(content).hexdigest()[:12]
    texts = [m.plain_text for m in sim.chat(ALICE) if m.from_bot]
    assert texts[0] == f"reçu cv.pdf {len(content)} {digest}"
    assert copy.document_name == "echo-cv.pdf"
    assert copy.document_bytes == content
    assert copy.caption == "copie"
    assert copy.document is not None and copy.document.mime_type == "application/pdf"


async def test_photo_sizes_and_resend_by_file_id(sim: BotSimulator) -> None:
    content = png(1000, 600)
    sent = sim.send_photo(ALICE, content)
    reply = await sim.wait_for_bot(ALICE, lambda m: m.photo is not None)

    assert sent.photo is not None and len(sent.photo.group) == 4  # 90, 320, 800, original
    assert reply.plain_caption == f"4 1000x600 {len(content)}"
    assert reply.photo_bytes == content
    assert reply.photo is sent.photo  # same file, sent again by file_id


async def test_album_is_several_messages_with_one_group(
    sim: BotSimulator, seen: list[Message]
) -> None:
    messages = sim.send_album(ALICE, [png(40, 40), png(50, 50), png(60, 60)], caption="pièces")
    await sim.wait_idle()
    # Updates are handled as tasks here: on a loaded machine one may still be on its way
    # after a quiet spell.
    async with asyncio.timeout(5):
        while len(seen) < 3:
            await asyncio.sleep(0.01)

    assert len({m.media_group_id for m in messages}) == 1
    assert [m.id for m in messages] == [1, 2, 3]
    assert len(seen) == 3
    assert {m.media_group_id for m in seen} == {messages[0].media_group_id}
    assert seen[0].caption == "pièces" and seen[1].caption is None
    assert sim.actions(ALICE) == 1


async def test_wait_for_bot_times_out_with_transcript(server: BotAPIServer) -> None:
    server.sim.send_text(ALICE, "personne ne répond")
    with pytest.raises(TimeoutError, match="personne ne répond"):
        await server.sim.wait_for_bot(ALICE, timeout=0.05)


# --------------------------------------------------------------------------- Bot API


async def test_long_poll_wakes_up_and_offset_confirms(server: BotAPIServer, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    server.sim.send_text(ALICE, "réveil")
    updates = await poll

    assert loop.time() - started < 1
    assert [u.message.text for u in updates if u.message] == ["réveil"]
    assert updates[0].message is not None and updates[0].message.from_user is not None
    assert updates[0].message.from_user.username == "alice"
    server.sim.send_text(ALICE, "encore")
    again = await bot.get_updates(timeout=0)
    assert len(again) == 2  # nothing confirmed yet
    confirmed = await bot.get_updates(offset=again[-1].update_id + 1, timeout=0)
    assert confirmed == []
    assert again[1].update_id > again[0].update_id


async def test_allowed_updates_filter(server: BotAPIServer, bot: Bot) -> None:
    server.sim.send_text(ALICE, "ignoré")
    assert await bot.get_updates(allowed_updates=["callback_query"], timeout=0) == []
    assert server.sim.pending_updates() == []


async def test_commands_per_scope_and_language(server: BotAPIServer, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Démarrer")])
    await bot.set_my_commands(
        [BotCommand(command="aide", description="Aide")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="fr",
    )
    await bot.set_my_commands(
        [BotCommand(command="admin", description="Gestion")],
        scope=BotCommandScopeChat(chat_id=ALICE),
    )

    default = await bot.get_my_commands()
    private_fr = await bot.get_my_commands(
        scope=BotCommandScopeAllPrivateChats(), language_code="fr"
    )
    private = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats())
    chat = await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=ALICE))
    assert [c.command for c in default] == ["start"]
    assert [c.command for c in private_fr] == ["aide"]
    assert private == []
    assert [c.command for c in chat] == ["admin"]
    assert [c["command"] for c in server.sim.commands(ALICE)] == ["admin"]

    await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=ALICE))
    assert [c["command"] for c in server.sim.commands(ALICE)] == ["aide"]  # user is "fr"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=999))
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])

    assert isinstance(await bot.get_chat_menu_button(), MenuButtonCommands)
    web_app = MenuButtonWebApp(text="Ouvrir", web_app=WebAppInfo(url="https://example.org"))
    await bot.set_chat_menu_button(chat_id=ALICE, menu_button=web_app)
    shown = await bot.get_chat_menu_button(chat_id=ALICE)
    assert isinstance(shown, MenuButtonWebApp) and shown.web_app.url == "https://example.org"


async def test_message_errors(server: BotAPIServer, bot: Bot) -> None:
    server.sim.send_text(ALICE, "salut")  # the user opened the chat
    sent = await bot.send_message(ALICE, "<i>Bonjour</i>")
    assert sent.text == "Bonjour" and sent.html_text == "<i>Bonjour</i>"

    with pytest.raises(TelegramBadRequest) as not_modified:
        await bot.edit_message_text("<i>Bonjour</i>", chat_id=ALICE, message_id=sent.message_id)
    assert not_modified.value.message == NOT_MODIFIED

    too_long_data = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="x" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="Bad Request: BUTTON_DATA_INVALID"):
        await bot.send_message(ALICE, "clavier", reply_markup=too_long_data)
    with pytest.raises(TelegramBadRequest, match="Bad Request: message text is empty"):
        await bot.send_message(ALICE, "  ")
    with pytest.raises(TelegramBadRequest, match="Bad Request: message is too long"):
        await bot.send_message(ALICE, "a" * 4097)
    with pytest.raises(TelegramBadRequest, match="Can't find end tag"):
        await bot.send_message(ALICE, "<b>ouvert")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=ALICE, message_id=999)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=ALICE, message_id=1)
    assert await bot.delete_message(ALICE, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(ALICE, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await bot.send_message(999, "personne")
    server.sim.user(7, "Bob")
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(7, "spam")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("123")
    assert server.sim.chat(ALICE)[-1].deleted


async def test_reply_keyboard_remove_and_edit_markup(server: BotAPIServer, bot: Bot) -> None:
    server.sim.send_text(ALICE, "salut")
    keyboard = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="A")]])
    await bot.send_message(ALICE, "clavier", reply_markup=keyboard)
    assert server.sim.reply_keyboard(ALICE) == [["A"]]
    await bot.send_message(ALICE, "...", reply_markup=ReplyKeyboardRemove())
    assert server.sim.reply_keyboard(ALICE) is None

    inline = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="OK", callback_data="ok")]]
    )
    sent = await bot.send_message(ALICE, "choix")
    edited = await bot.edit_message_reply_markup(
        chat_id=ALICE, message_id=sent.message_id, reply_markup=inline
    )
    assert isinstance(edited, Message) and edited.reply_markup is not None
    # model_dump: aiogram objects also compare their bound Bot, which differs here.
    assert edited.reply_markup.model_dump() == inline.model_dump()
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=ALICE, message_id=sent.message_id, reply_markup=inline
        )


async def test_media_edits_groups_and_force_reply(server: BotAPIServer, bot: Bot) -> None:
    # The calls aiogram-dialog makes when a window switches between text and media.
    server.sim.send_text(ALICE, "salut")
    photo = await bot.send_photo(
        ALICE, BufferedInputFile(png(400, 300), "p.png"), caption="<b>Photo</b>"
    )
    assert photo.photo is not None and len(photo.photo) == 3
    assert photo.caption == "Photo" and photo.html_text == "<b>Photo</b>"
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text("texte", chat_id=ALICE, message_id=photo.message_id)
    captioned = await bot.edit_message_caption(
        chat_id=ALICE, message_id=photo.message_id, caption="Légende"
    )
    assert isinstance(captioned, Message) and captioned.caption == "Légende"
    document = InputMediaDocument(media=BufferedInputFile(b"abc", "note.txt"), caption="doc")
    replaced = await bot.edit_message_media(
        chat_id=ALICE, message_id=photo.message_id, media=document
    )
    assert isinstance(replaced, Message) and replaced.document is not None
    assert replaced.document.file_name == "note.txt" and replaced.photo is None
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(ALICE, BufferedInputFile(b"not an image", "x.png"))

    album = await bot.send_media_group(
        ALICE,
        [
            InputMediaPhoto(media=photo.photo[-1].file_id),
            InputMediaPhoto(media=photo.photo[0].file_id),
        ],
    )
    assert len({m.media_group_id for m in album}) == 1 and album[0].media_group_id

    question = await bot.send_message(ALICE, "Votre nom ?", reply_markup=ForceReply())
    answer = server.sim.send_text(ALICE, "Alice")  # a client replies to a force_reply
    assert answer.reply_to_message_id == question.message_id
    update = server.sim.pending_updates()[-1]["message"]
    assert update["reply_to_message"]["text"] == "Votre nom ?"


async def test_injected_429_raises_retry_after_once(server: BotAPIServer, bot: Bot) -> None:
    server.sim.send_text(ALICE, "salut")
    server.sim.fail_next("sendMessage", 429, retry_after=3)

    with pytest.raises(TelegramRetryAfter) as flood:
        await bot.send_message(ALICE, "premier essai")
    assert flood.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in flood.value.message
    sent = await bot.send_message(ALICE, "second essai")
    assert sent.text == "second essai"
    assert [c.ok for c in server.sim.calls("sendMessage")] == [False, True]


async def test_unknown_token_and_unknown_method(server: BotAPIServer) -> None:
    stranger = make_bot(server, token="999:unknown")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()

    async with ClientSession() as http:
        url = f"{server.base_url}/bot{server.sim.token}/noSuchMethod"
        async with http.post(url) as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        # Telegram method names are case-insensitive.
        async with http.get(f"{server.base_url}/bot{server.sim.token}/GETME") as response:
            body = await response.json()
            assert body["ok"] and body["result"]["username"] == "aesh_test_bot"


async def test_several_bots_by_token(server: BotAPIServer) -> None:
    other_sim = server.add_bot("555:other", username="other_bot")
    other = make_bot(server, token=other_sim.token)
    try:
        me = await other.get_me()
        assert (me.id, me.username) == (555, "other_bot")
        other_sim.send_text(ALICE, "hello other")
        assert server.sim.chat(ALICE) == []
        updates = await other.get_updates()
        assert updates[0].message is not None and updates[0].message.text == "hello other"
    finally:
        await other.session.close()


async def test_get_file_refuses_over_20_mb(server: BotAPIServer, bot: Bot) -> None:
    big = server.sim.send_document(ALICE, b"\0" * (DOWNLOAD_LIMIT + 1), "gros.bin")
    small = server.sim.send_document(ALICE, b"petit", "petit.txt")
    assert big.document is not None and small.document is not None

    with pytest.raises(TelegramBadRequest, match="Bad Request: file is too big"):
        await bot.get_file(big.document.file_id)
    file = await bot.get_file(small.document.file_id)
    assert file.file_path and file.file_size == 5
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == b"petit"


# --------------------------------------------------------------------------- /_sim/ routes


async def test_sim_http_routes(server: BotAPIServer, sim: BotSimulator) -> None:
    base = f"{server.base_url}/_sim"

    async def call(route: str, **payload: Any) -> Any:
        async with http.post(f"{base}/{route}", json=payload) as response:
            body = await response.json()
            assert response.status == 200, body
            return body["result"]

    async with ClientSession() as http:
        user = await call("users", id=77, first_name="Chloé", username="chloe")
        assert user["first_name"] == "Chloé"
        await call("send_text", user_id=77, text="bonjour")
        reply = await call("wait_for_bot", user_id=77, timeout=5)
        assert reply["plain_text"] == "echo: bonjour"
        assert reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "like"

        await call("press", user_id=77, button="J'aime")
        await sim.wait_for_callback_answer(77)
        answers = await call("callback_answers", user_id=77)
        assert answers[0]["text"] == "Merci !"

        form = FormData()
        form.add_field("user_id", "77")
        form.add_field("file", b"%PDF-1.4 test", filename="piece.pdf")
        async with http.post(f"{base}/send_document", data=form) as response:
            assert response.status == 200
        copy = await sim.wait_for_bot(77, lambda m: m.document is not None)
        assert copy.document is not None
        async with http.get(f"{base}/files/{copy.document.file_id}") as response:
            assert await response.read() == b"%PDF-1.4 test"

        photo = base64.b64encode(png(20, 20)).decode()
        await call("send_photo", user_id=77, content_base64=photo)
        await sim.wait_for_bot(77, lambda m: m.photo is not None)

        async with http.get(f"{base}/chat", params={"user_id": "77"}) as response:
            view = (await response.json())["result"]
        assert view["actions"] == await call("actions", user_id=77) == 4
        assert view["messages"][1]["edited"] is True
        assert view["bot"]["username"] == "aesh_test_bot"

        # A browser long-polls the chat with the version it already has.
        waiting = asyncio.create_task(
            http.get(f"{base}/chat", params={"user_id": "77", "since": str(view["version"])})
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await call("send_text", user_id=77, text="encore")
        async with await waiting as response:
            later = (await response.json())["result"]
        assert later["version"] > view["version"]

        async with http.options(f"{base}/chat") as response:  # CORS preflight
            assert response.headers["Access-Control-Allow-Origin"] == "*"

        await call("fail_next", method="getMe", status=500)
        async with http.get(f"{server.base_url}/bot{sim.token}/getMe") as response:
            assert response.status == 500

        async with http.post(f"{base}/press", json={"user_id": 77, "button": "absent"}) as r:
            assert r.status == 404 and not (await r.json())["ok"]
