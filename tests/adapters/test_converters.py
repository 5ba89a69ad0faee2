"""The message converter registry as adapters use it."""

from __future__ import annotations

from learning_machines._messages import (
    _CONVERTERS,
    ChatMessage,
    MessageConverter,
    register_converter,
    to_chat_messages,
)


class Note:
    def __init__(self, text: str) -> None:
        self.text = text


def test_a_converter_registered_again_replaces_the_earlier_one() -> None:
    def first(item: Note) -> list[ChatMessage]:
        return [ChatMessage(role="user", content="first " + item.text)]

    def second(item: Note) -> list[ChatMessage]:
        return [ChatMessage(role="user", content="second " + item.text)]

    accepts = lambda item: isinstance(item, Note)  # noqa: E731
    register_converter(MessageConverter(name="note", accepts=accepts, convert=first))
    register_converter(MessageConverter(name="note", accepts=accepts, convert=second))
    assert [m.content for m in to_chat_messages([Note("hi")])] == ["second hi"]
    assert [c.name for c in _CONVERTERS].count("note") == 1  # importing twice adds nothing


def test_chat_format_content_parts_are_read_as_text() -> None:
    # OpenAI's chat format allows a list of parts as content; it is text, not JSON.
    chat = to_chat_messages(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}],
            }
        ]
    )
    assert [m.content for m in chat] == ["hello\nthere"]
