"""ingest.common's printing of untrusted text: escaped, quoted, terminal_json, and the
payload preview of dead letters that uses them."""

import json

from ingest.common import escaped, quoted, terminal_json
from ingest.pubsub import payload_preview

UNSAFE = "a\x1b[2Jb\x07c\u009bd\u202ee\u2028f\ud800g\U000e0001h\x7f\n\r\t"


def test_escaped_leaves_printable_text_and_escapes_the_rest_as_json_does():
    assert escaped("Zoë O'Brien, 東京 \\ ok") == "Zoë O'Brien, 東京 \\ ok"
    assert escaped(UNSAFE) == (
        "a\\u001b[2Jb\\u0007c\\u009bd\\u202ee\\u2028f\\ud800g\\udb40\\udc01h\\u007f\\n\\r\\t"
    )
    assert json.loads(f'"{escaped(UNSAFE)}"') == UNSAFE


def test_quoted_is_one_word_without_control_characters():
    assert quoted("ada@example.com") == "ada@example.com"
    assert quoted("two words") == '"two words"'
    assert quoted("") == '""'
    assert quoted("no\u00a0break") == '"no\\u00a0break"'  # not a plain space: shown
    shown = quoted(UNSAFE)
    assert shown.isprintable() and json.loads(shown) == UNSAFE


def test_terminal_json_is_the_same_json_with_nothing_a_terminal_acts_on():
    value = {"id": UNSAFE, UNSAFE: [1, "東京"]}
    text = terminal_json(value)
    assert all(line.isprintable() for line in text.split("\n"))
    assert json.loads(text) == value
    assert "東京" in text


def test_payload_preview_is_one_printable_line():
    preview = payload_preview(UNSAFE.encode("utf-8", "surrogatepass"))
    assert preview.isprintable()
    assert preview.startswith("a\\u001b[2Jb")
