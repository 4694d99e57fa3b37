"""The tokenizer Triton model, outside Triton (its pb_utils import is guarded)."""

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from tritonkit.runtime.tokenizer import (
    ParameterError,
    TextEncoder,
    TokenizerError,
    TokenizerParams,
    encoder_from_config,
)


@pytest.fixture()
def encoder(minilm_dir: Path) -> TextEncoder:
    return TextEncoder(str(minilm_dir / "tokenizer.json"), TokenizerParams(max_length=16))


def test_pads_to_the_longest_text_of_the_request(encoder: TextEncoder) -> None:
    out = encoder.encode(["hello world", "a much longer sentence than the first one"])
    assert set(out) == {"input_ids", "attention_mask"}
    assert out["input_ids"].dtype == np.int64
    lengths = out["attention_mask"].sum(axis=1)
    assert out["input_ids"].shape == (2, int(lengths.max()))
    assert lengths[0] == 4  # [CLS] hello world [SEP]
    assert (out["input_ids"][0, 4:] == 0).all()


def test_truncates_to_max_length(encoder: TextEncoder) -> None:
    out = encoder.encode(["word " * 100])
    assert out["input_ids"].shape == (1, 16)
    assert out["input_ids"][0, -1] == 102  # [SEP] kept after truncation


def test_empty_string_is_cls_sep(encoder: TextEncoder) -> None:
    out = encoder.encode([""])
    assert out["input_ids"].tolist() == [[101, 102]]


def test_optional_outputs_and_rounding(minilm_dir: Path) -> None:
    params = TokenizerParams(
        max_length=64, emit_token_type_ids=True, emit_offsets=True, pad_to_multiple_of=8
    )
    enc = TextEncoder(str(minilm_dir / "tokenizer.json"), params)
    out = enc.encode(["hello world"])
    assert set(out) == {"input_ids", "attention_mask", "token_type_ids", "offsets"}
    assert out["input_ids"].shape == (1, 8)
    assert out["offsets"].shape == (1, 8, 2)
    assert out["offsets"][0, 1].tolist() == [0, 5]


def test_buckets(minilm_dir: Path) -> None:
    params = TokenizerParams(max_length=32, buckets=(6, 12))
    enc = TextEncoder(str(minilm_dir / "tokenizer.json"), params)
    assert enc.encode(["hello world"])["input_ids"].shape == (1, 6)  # 4 tokens -> bucket 6
    assert enc.encode(["one two three four five six"])["input_ids"].shape == (1, 12)
    assert enc.encode(["word " * 20])["input_ids"].shape == (1, 32)  # past them: max_length
    assert enc.encode(["word " * 50])["input_ids"].shape == (1, 32)  # truncated at max_length


def test_decode_rejects_invalid_utf8_and_empty(encoder: TextEncoder) -> None:
    good = np.array([["héllo".encode()]], dtype=np.object_)
    assert encoder.decode_texts(good) == ["héllo"]
    with pytest.raises(TokenizerError) as info:
        encoder.decode_texts(np.array([[b"ok"], [b"\xff\xfe"]], dtype=np.object_))
    assert str(info.value) == "TEXT[1] is not valid UTF-8 (byte 0): send UTF-8 encoded text"
    with pytest.raises(TokenizerError, match="TEXT is empty"):
        encoder.decode_texts(np.zeros((0, 1), dtype=np.object_))


def test_encoder_from_config(minilm_dir: Path) -> None:
    config = {
        "parameters": {
            "max_length": {"string_value": "12"},
            "pad_token_id": {"string_value": "0"},
            "emit_token_type_ids": {"string_value": "1"},
        }
    }
    enc = encoder_from_config(config, str(minilm_dir))
    assert enc.params == TokenizerParams(max_length=12, emit_token_type_ids=True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "parameter max_length is missing"),
        ({"max_length": "x"}, "parameter max_length 'x' is not an integer"),
        ({"max_length": "0"}, "parameter max_length 0 must be at least 1"),
        (
            {"max_length": "8", "buckets": "4,a"},
            "parameter buckets '4,a' is not a list of integers",
        ),
        ({"max_length": "8", "buckets": "4,-1"}, "parameter buckets [4, -1] must be positive"),
        ({"max_length": "8", "emit_offsets": "2"}, "parameter emit_offsets '2' must be 0 or 1"),
    ],
)
def test_parameters_are_validated(params: dict[str, str], message: str) -> None:
    with pytest.raises(ParameterError) as info:
        TokenizerParams.from_parameters(params)
    assert str(info.value) == message


def test_parameters_round_trip() -> None:
    params = TokenizerParams(64, 1, True, True, 8, (32, 16))
    assert params.buckets == (16, 32)
    assert TokenizerParams.from_parameters(params.to_parameters()) == params


# Issue 10 item 4: texts are bounded before tokenizing, with the whole text's tokens.


def byte_level_bpe(dest: Path) -> Path:
    """A small byte-level BPE tokenizer (RoBERTa's kind), trained offline on a fixed text."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = ["The quick brown fox jumps over the lazy dog. " * 20, "東京は日本の首都です。" * 20]
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, min_frequency=1))
    path = dest / "bpe.json"
    tokenizer.save(str(path))
    return path


LONG_TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog, again and again. " * 2000,
    "cjk": "東京は日本の首都です北京和上海也是大城市" * 5000,
    "one word": "a" * 300_000,
    "base64": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 5000,
    "emoji": "🚀🔥😀 ok " * 20_000,
    "spaces": " " * 20_000 + "finally " * 100,
    "word at the cut": "word " * 405 + "x" * 5000 + " tail" * 100,
    "lines": "line one\nline two\n\n" * 10_000,
}


@pytest.mark.parametrize("kind", ["minilm", "bpe"])
@pytest.mark.parametrize("name", sorted(LONG_TEXTS))
def test_a_long_text_gives_the_whole_texts_tokens(
    minilm_dir: Path, tmp_path: Path, kind: str, name: str
) -> None:
    path = str(minilm_dir / "tokenizer.json") if kind == "minilm" else str(byte_level_bpe(tmp_path))
    text = LONG_TEXTS[name]
    params = TokenizerParams(max_length=64, emit_offsets=True)
    encoder = TextEncoder(path, params)
    assert len(text) > encoder.char_budget
    reference = Tokenizer.from_file(path)  # what PyTorch's tokenizer does: all, then truncate
    reference.no_padding()
    reference.enable_truncation(max_length=64)
    want = reference.encode(text)
    got = encoder.encode(encoder.decode_texts(np.array([[text.encode()]], dtype=np.object_)))
    n = len(want.ids)
    assert got["input_ids"][0, :n].tolist() == want.ids
    assert got["attention_mask"][0].sum() == n
    # A token that runs past the cut (one endless word's [UNK]) ends at the cut.
    cut = len(encoder.bounded(text))
    assert got["offsets"][0, :n].tolist() == [[a, min(b, cut)] for a, b in want.offsets]


def test_a_20_mb_text_costs_milliseconds(encoder: TextEncoder) -> None:
    import time

    text = "Twenty megabytes of words, and every one of them is read by nobody. " * 300_000
    assert len(text) > 20_000_000
    raw = np.array([[text.encode()]], dtype=np.object_)
    started = time.perf_counter()
    out = encoder.encode(encoder.decode_texts(raw))
    elapsed = time.perf_counter() - started
    assert out["input_ids"].shape == (1, 16)
    assert elapsed < 1.0, f"{elapsed:.2f} s"  # ~0.05 s here; the whole text took 27 s


def test_what_no_prefix_up_to_the_cap_explains_is_cut_at_the_cap(encoder: TextEncoder) -> None:
    """The documented limit: text after more than max_length * 512 characters that hold no
    complete words (here: spaces) is not read."""
    cap = encoder.char_budget * 16
    assert encoder.bounded(" " * cap + "late words") == " " * cap
    text = " " * (cap // 2) + "early words " * 40
    assert encoder.bounded(text) is text


def test_a_short_text_is_not_cut(encoder: TextEncoder) -> None:
    text = "word " * (encoder.char_budget // 5)
    assert encoder.bounded(text) is text
    assert encoder.bounded(text + "x" * encoder.char_budget) != text
