"""Splitting a long reply into the pieces a messaging app takes, in order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.channels.text_parts import split_text, utf16_length


def test_cuts_at_a_paragraph_before_a_line_before_a_word():
    text = "Chào anh.\n\nĐơn hàng gồm:\náo sơ mi trắng size M"
    assert split_text(text, 30) == ["Chào anh.", "Đơn hàng gồm:", "áo sơ mi trắng size M"]


def test_a_word_longer_than_the_limit_is_cut_inside():
    assert split_text("https://shop.vn/" + "x" * 20, 12) == [
        "https://shop",
        ".vn/xxxxxxxx",
        "xxxxxxxxxxxx",
    ]


def test_short_and_blank_texts():
    assert split_text("  Dạ còn ạ \n", 2000) == ["Dạ còn ạ"]
    assert split_text(" \n ", 2000) == []


def test_telegram_counts_an_emoji_as_two_and_never_splits_it():
    assert split_text("😀😀😀", 4, length=utf16_length) == ["😀😀", "😀"]


@given(
    st.text(alphabet=st.sampled_from("ab ạ\n😀"), max_size=300),
    st.integers(min_value=2, max_value=50),
    st.sampled_from([len, utf16_length]),
)
def test_pieces_fit_and_keep_every_character_in_order(text, limit, length):
    pieces = split_text(text, limit, length=length)
    assert all(0 < length(p) <= limit for p in pieces)
    assert all(p == p.strip() for p in pieces)
    # Only the whitespace a piece was cut at is gone.
    assert "".join("".join(pieces).split()) == "".join(text.split())
