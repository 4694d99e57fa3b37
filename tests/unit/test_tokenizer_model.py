"""The tokenizer Triton model, outside Triton (its pb_utils import is guarded)."""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tritonkit.runtime.tokenizer import (
    ParameterError,
    TextEncoder,
    TokenizerError,
    TokenizerParams,
    encode_requests,
    encoder_from_config,
    error_message,
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


TEXTS = [
    "hello",
    "a much longer sentence than the first one, with punctuation!",
    "",
    "東京は日本の首都です。",
    "word " * 40,
    "Emoji work too 🚀🔥",
]


def _request(*texts: str | bytes) -> np.ndarray:
    items = [t.encode() if isinstance(t, str) else t for t in texts]
    return np.array(items, dtype=np.object_).reshape(-1, 1)


@pytest.mark.parametrize(
    "params",
    [
        TokenizerParams(max_length=16),
        TokenizerParams(max_length=32, emit_token_type_ids=True, emit_offsets=True),
        TokenizerParams(max_length=64, pad_to_multiple_of=8),
        TokenizerParams(max_length=32, buckets=(4, 12)),
    ],
)
def test_a_batch_equals_each_request_alone(minilm_dir: Path, params: TokenizerParams) -> None:
    """One encode call for every request of a batch, cut back per request: the same tensors,
    shapes and dtypes as tokenizing each request on its own."""
    encoder = TextEncoder(str(minilm_dir / "tokenizer.json"), params)
    requests = [
        _request(TEXTS[0]),
        _request(TEXTS[1], TEXTS[2]),
        _request(TEXTS[3]),
        _request(TEXTS[4], TEXTS[0], TEXTS[5]),
        _request(TEXTS[2]),
    ]
    batched = encode_requests(encoder, requests)
    assert len(batched) == len(requests)
    for raw, got in zip(requests, batched, strict=True):
        alone = encoder.encode(encoder.decode_texts(raw))
        assert isinstance(got, dict)
        assert set(got) == set(alone)
        for name, array in alone.items():
            assert got[name].dtype == array.dtype
            assert got[name].shape == array.shape, name
            assert np.array_equal(got[name], array), name
            assert got[name].flags["C_CONTIGUOUS"]


def test_a_bad_request_fails_alone(encoder: TextEncoder) -> None:
    requests: list[np.ndarray | None] = [
        _request("first"),
        _request("ok", b"\xff\xfe bad"),
        np.zeros((0, 1), dtype=np.object_),
        None,
        _request("last one, longer than the first"),
    ]
    results = encode_requests(encoder, requests)
    assert [error_message(r) for r in results if isinstance(r, Exception)] == [
        "TEXT[1] is not valid UTF-8 (byte 0): send UTF-8 encoded text",
        "TEXT is empty: send at least one text (shape [N, 1], N >= 1)",
        "input TEXT is missing: send a TYPE_STRING tensor named TEXT",
    ]
    for index in (0, 4):
        good = results[index]
        assert isinstance(good, dict)
        alone = encoder.encode(encoder.decode_texts(requests[index]))  # type: ignore[arg-type]
        assert np.array_equal(good["input_ids"], alone["input_ids"])


class _BreaksOnOneText(TextEncoder):
    """An encoder whose tokenization fails for one text, as a bug in a tokenizer might."""

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        if "poison" in texts:
            raise RuntimeError("cannot tokenize poison")
        return super().encode(texts)


def test_a_failure_inside_the_batch_call_fails_only_its_request(minilm_dir: Path) -> None:
    encoder = _BreaksOnOneText(str(minilm_dir / "tokenizer.json"), TokenizerParams(16))
    results = encode_requests(encoder, [_request("fine"), _request("poison"), _request("ok")])
    assert isinstance(results[0], dict) and isinstance(results[2], dict)
    assert isinstance(results[1], RuntimeError)
    assert error_message(results[1]) == "tokenizer failed: RuntimeError: cannot tokenize poison"
    assert results[0]["input_ids"].tolist() == encoder.encode(["fine"])["input_ids"].tolist()


def test_execute_answers_every_request_in_order(
    minilm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Triton entry point over a stand-in for triton_python_backend_utils."""
    from tritonkit.runtime import tokenizer as module

    class Response:
        def __init__(self, output_tensors: list[Any] | None = None, error: Any = None) -> None:
            self.tensors, self.error = output_tensors, error

    fake = SimpleNamespace(
        Tensor=lambda name, array: (name, array),
        TritonError=str,
        InferenceResponse=Response,
        get_input_tensor_by_name=lambda request, name: request.get(name),
    )
    monkeypatch.setattr(module, "pb_utils", fake)
    model = module.TritonPythonModel()
    config = {
        "parameters": {"max_length": {"string_value": "16"}},
        "output": [{"name": "input_ids"}, {"name": "attention_mask"}],
    }
    version = minilm_dir.name
    model.initialize(
        {
            "model_config": json.dumps(config),
            "model_repository": str(minilm_dir.parent),
            "model_version": version,
        }
    )
    text = SimpleNamespace(as_numpy=lambda: _request("hello world"))
    bad = SimpleNamespace(as_numpy=lambda: _request(b"\xff"))
    responses = model.execute([{"TEXT": text}, {"TEXT": bad}, {}])
    assert [r.error for r in responses] == [
        None,
        "TEXT[0] is not valid UTF-8 (byte 0): send UTF-8 encoded text",
        "input TEXT is missing: send a TYPE_STRING tensor named TEXT",
    ]
    names = [name for name, _ in responses[0].tensors]
    assert names == ["input_ids", "attention_mask"]
    assert responses[0].tensors[0][1].tolist() == [[101, 7592, 2088, 102]]
