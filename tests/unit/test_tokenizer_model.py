"""The tokenizer Triton model, outside Triton (its pb_utils import is guarded)."""

from pathlib import Path

import numpy as np
import pytest

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
