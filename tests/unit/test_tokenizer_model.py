"""The tokenizer Triton model, outside Triton (its pb_utils import is guarded)."""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer

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
