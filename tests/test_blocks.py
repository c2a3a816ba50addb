"""Block Kit builders stay inside Slack's limits whatever they are given."""

from __future__ import annotations

from handlers.blocks import MAX_BLOCKS, code, escape, fit, header, message, section
from handlers.boundary import error_result
from handlers.grammar.spec import SUBCOMMANDS
from handlers.help import help_reply
from sandbox.blockkit import validate_blocks
from services.errors import UserError


def test_escape_neutralises_mentions_and_links() -> None:
    assert escape("<!channel> & <@U123>") == "&lt;!channel&gt; &amp; &lt;@U123&gt;"


def test_long_texts_are_truncated_to_the_limits() -> None:
    blocks = [header("h" * 500), section("s" * 9000)]
    assert validate_blocks(list(blocks)) == []
    fields = section("x", fields=["f" * 5000] * 12)["fields"]
    assert len(fields) == 10
    assert all(len(f["text"]) == 2000 for f in fields)


def test_many_blocks_are_cut_with_a_note() -> None:
    reply = message("many", [section(f"app {i} " + "x" * 200) for i in range(400)])
    assert len(reply.blocks) <= MAX_BLOCKS
    assert validate_blocks(list(reply.blocks)) == []
    assert "more not shown" in str(reply.blocks[-1])


def test_code_block_truncates_on_line_boundaries() -> None:
    text = "\n".join(f"line {i} <tag>" for i in range(1000))
    rendered = code(text)
    assert len(rendered) < 3000
    assert "more lines" in rendered
    assert "<tag>" not in rendered


def test_every_help_page_is_valid_block_kit() -> None:
    pages = [help_reply(None), *(help_reply(name) for name in SUBCOMMANDS)]
    for page in pages:
        assert validate_blocks(list(page.blocks)) == [], page.text
        assert page.text


def test_user_error_text_cannot_ping() -> None:
    result = error_result(UserError("bad value `<!channel>`"), correlation_id="abcd1234")
    assert "<!channel>" not in str(result.reply.blocks)
    assert fit(result.reply.blocks) == result.reply.blocks
