"""Triton Python-backend tokenizer: raw text in, padded int64 token tensors out.

Copied by tritonkit into ``<name>_tokenizer/1/model.py`` next to ``tokenizer.json``. It depends
only on ``tokenizers`` and numpy. The triton_python_backend_utils import is guarded so the
module can be unit-tested outside Triton, and so that tritonkit itself reads and writes the
parameters through `TokenizerParams` here: the tokenizer's contract has one owner.

Config parameters (string values):
  max_length            truncate to this many tokens (the model's maximum)
  pad_token_id          id used for padding
  emit_token_type_ids   "1" if the model takes token_type_ids
  emit_offsets          "1" to return character offsets (token classification)
  pad_to_multiple_of    pad each request's length up to a multiple of this (0: no rounding)
  buckets               comma-separated lengths, e.g. "16,24,40,128": pad each request to the
                        smallest bucket that holds its longest text, so that requests of similar
                        length share a shape and Triton's dynamic batcher can merge them

Without buckets each request is padded to its own longest text (rounded as above), so no
request pays for another's length. Every request of an execute() call (a dynamic batch) is
tokenized in one `encode_batch` call and cut back into per-request tensors that equal what the
request alone would get (`encode_requests`). A bad request (invalid UTF-8, empty batch) gets a
Triton error response; the other requests of the same execute() call are served.

Texts are bounded before they are tokenized (`TextEncoder.bounded`): a tokenizer reads the
whole text before truncating, so one 20 MB text once held the model (and every request queued
behind it) for 27 s. Only a prefix is tokenized, long enough that its complete words alone give
max_length tokens: the tokens kept are exactly those of the whole text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

try:
    import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]
except ImportError:  # outside Triton (unit tests, tritonkit itself)
    pb_utils = None


class TokenizerError(ValueError):
    """A request the tokenizer refuses; its message goes back to the client."""


class ParameterError(ValueError):
    """A config parameter the tokenizer cannot use; the message names the key."""


def _integer(params: Mapping[str, str], key: str, default: int, low: int) -> int:
    text = params.get(key, str(default)).strip() or str(default)
    try:
        value = int(text)
    except ValueError:
        raise ParameterError(f"parameter {key} '{text}' is not an integer") from None
    if value < low:
        raise ParameterError(f"parameter {key} {value} must be at least {low}")
    return value


def _flag(params: Mapping[str, str], key: str) -> bool:
    text = params.get(key, "0")
    if text not in ("0", "1"):
        raise ParameterError(f"parameter {key} '{text}' must be 0 or 1")
    return text == "1"


@dataclass(frozen=True)
class TokenizerParams:
    """The tokenizer model's parameters, typed; `to_parameters`/`from_parameters` are the only
    translation to and from the config's strings."""

    max_length: int
    pad_token_id: int = 0
    emit_token_type_ids: bool = False
    emit_offsets: bool = False
    pad_to_multiple_of: int = 0
    buckets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ParameterError(f"parameter max_length {self.max_length} must be at least 1")
        if any(b < 1 for b in self.buckets):
            raise ParameterError(f"parameter buckets {list(self.buckets)} must be positive")
        object.__setattr__(self, "buckets", tuple(sorted(set(self.buckets))))

    def to_parameters(self) -> dict[str, str]:
        return {
            "max_length": str(self.max_length),
            "pad_token_id": str(self.pad_token_id),
            "emit_token_type_ids": "1" if self.emit_token_type_ids else "0",
            "emit_offsets": "1" if self.emit_offsets else "0",
            "pad_to_multiple_of": str(self.pad_to_multiple_of),
            "buckets": ",".join(str(b) for b in self.buckets),
        }

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> TokenizerParams:
        if "max_length" not in params:
            raise ParameterError("parameter max_length is missing")
        buckets = params.get("buckets", "")
        try:
            parsed = tuple(int(b) for b in buckets.split(",") if b.strip())
        except ValueError:
            raise ParameterError(
                f"parameter buckets '{buckets}' is not a list of integers"
            ) from None
        return cls(
            max_length=_integer(params, "max_length", 0, 1),
            pad_token_id=_integer(params, "pad_token_id", 0, 0),
            emit_token_type_ids=_flag(params, "emit_token_type_ids"),
            emit_offsets=_flag(params, "emit_offsets"),
            pad_to_multiple_of=_integer(params, "pad_to_multiple_of", 0, 0),
            buckets=parsed,
        )

    def padded_length(self, longest: int) -> int:
        """The length a request is padded to when its longest text has `longest` tokens: the
        smallest bucket that holds it (capped at max_length), max_length above the last bucket;
        without buckets its own length, rounded up to pad_to_multiple_of."""
        for bucket in self.buckets:
            if bucket >= longest:
                return min(bucket, self.max_length)
        if self.buckets:
            return self.max_length
        step = self.pad_to_multiple_of
        if step > 1:
            longest = -(-longest // step) * step
        return min(max(longest, 1), self.max_length)

    def padded_lengths(self) -> tuple[int, ...]:
        """Every sequence length this tokenizer can send."""
        return tuple(sorted({self.padded_length(n) for n in range(1, self.max_length + 1)}))


# The first prefix tried is max_length * CHARS_PER_TOKEN characters (English averages 4-5
# characters a token, CJK 1); it grows GROWTH-fold while its complete words give fewer than
# max_length tokens, up to MAX_GROWTH times the first, where it is taken as it is (a text of
# one endless word, which no tokenizer splits usefully anyway).
CHARS_PER_TOKEN = 32
GROWTH = 4
MAX_GROWTH = 16


class TextEncoder:
    """The tokenization itself, independent of Triton."""

    def __init__(self, tokenizer_file: str, params: TokenizerParams) -> None:
        self.tokenizer = Tokenizer.from_file(tokenizer_file)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=params.max_length)
        self.params = params
        self.probe = Tokenizer.from_file(tokenizer_file)  # untruncated: counts a prefix's tokens
        self.probe.no_padding()
        self.probe.no_truncation()
        self.char_budget = params.max_length * CHARS_PER_TOKEN

    def bounded(self, text: str) -> str:
        """`text`, or the shortest tried prefix of it whose complete words give max_length
        tokens. Tokenizing that prefix and truncating gives the tokens the whole text gives
        (each word's tokens depend on that word only; the last word, which the cut may split,
        is not counted), at a cost bounded by the prefix's length."""
        limit, cap = self.char_budget, self.char_budget * MAX_GROWTH
        while len(text) > limit:
            if limit >= cap:
                return text[:cap]
            words = self.probe.encode(text[:limit], add_special_tokens=False).word_ids
            complete = sum(1 for w in words if w is not None and w != words[-1])
            if complete >= self.params.max_length:
                return text[:limit]
            limit *= GROWTH
        return text

    def decode_texts(self, raw: np.ndarray) -> list[str]:
        if raw.size == 0:
            raise TokenizerError("TEXT is empty: send at least one text (shape [N, 1], N >= 1)")
        texts = []
        for index, item in enumerate(raw.reshape(-1)):
            if isinstance(item, str):
                texts.append(self.bounded(item))
                continue
            try:
                texts.append(self.bounded(bytes(item).decode("utf-8")))
            except UnicodeDecodeError as e:
                raise TokenizerError(
                    f"TEXT[{index}] is not valid UTF-8 (byte {e.start}): send UTF-8 encoded text"
                ) from None
        return texts

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        length = self.params.padded_length(max(len(e.ids) for e in encodings))
        count = len(encodings)
        ids = np.full((count, length), self.params.pad_token_id, dtype=np.int64)
        mask = np.zeros((count, length), dtype=np.int64)
        types = np.zeros((count, length), dtype=np.int64)
        offsets = np.zeros((count, length, 2), dtype=np.int64)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
            if self.params.emit_offsets:
                offsets[row, :n] = enc.offsets
        out: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
        if self.params.emit_token_type_ids:
            out["token_type_ids"] = types
        if self.params.emit_offsets:
            out["offsets"] = offsets
        return out


def encoder_from_config(model_config: dict[str, Any], version_dir: str) -> TextEncoder:
    params = {k: v["string_value"] for k, v in model_config.get("parameters", {}).items()}
    return TextEncoder(
        os.path.join(version_dir, "tokenizer.json"), TokenizerParams.from_parameters(params)
    )


def _rows(
    batch: Mapping[str, np.ndarray], lengths: np.ndarray, rows: slice, params: TokenizerParams
) -> dict[str, np.ndarray]:
    """One request's rows of a batch encoding, cut to the width the request alone pads to.

    The batch is padded to `padded_length` of its longest text; a request's own width,
    `padded_length` of its longest text (`lengths`: tokens per row), is never larger (the rule
    is monotonic), and the columns past a row's tokens hold only padding, so the cut equals the
    request's own encoding.
    """
    width = params.padded_length(int(lengths[rows].max()))
    return {name: np.ascontiguousarray(array[rows, :width]) for name, array in batch.items()}


Encoded = dict[str, np.ndarray] | Exception


def _alone(encoder: TextEncoder, texts: list[str]) -> Encoded:
    try:
        return encoder.encode(texts)
    except Exception as e:  # this request's failure is its own
        return e


def encode_requests(encoder: TextEncoder, inputs: Sequence[np.ndarray | None]) -> list[Encoded]:
    """Each request's tensors, tokenized for the whole batch in one `encoder.encode` call.

    `inputs` holds each request's TEXT array (None: the input is missing). A request that cannot
    be decoded gets its TokenizerError and the others are served; if the batch call itself
    fails, each request is encoded alone so that only the one that fails gets the error.
    """
    results: dict[int, Encoded] = {}
    decoded: list[tuple[int, list[str]]] = []
    for index, raw in enumerate(inputs):
        try:
            if raw is None:
                raise TokenizerError("input TEXT is missing: send a TYPE_STRING tensor named TEXT")
            decoded.append((index, encoder.decode_texts(raw)))
        except TokenizerError as e:
            results[index] = e
    if len(decoded) == 1:
        index, texts = decoded[0]
        results[index] = _alone(encoder, texts)
    elif decoded:
        try:
            batch = encoder.encode([text for _, texts in decoded for text in texts])
        except Exception:
            for index, texts in decoded:
                results[index] = _alone(encoder, texts)
        else:
            lengths, start = batch["attention_mask"].sum(axis=1), 0
            for index, texts in decoded:
                rows = slice(start, start + len(texts))
                results[index] = _rows(batch, lengths, rows, encoder.params)
                start += len(texts)
    return [results[index] for index in range(len(inputs))]


def error_message(error: Exception) -> str:
    """What the client reads: a TokenizerError as it is, anything else named as a failure."""
    if isinstance(error, TokenizerError):
        return str(error)
    return f"tokenizer failed: {type(error).__name__}: {error}"


class TritonPythonModel:
    """Triton entry point."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.encoder = encoder_from_config(config, version_dir)
        self.output_names = [output["name"] for output in config["output"]]

    def _response(self, result: Encoded) -> Any:
        if isinstance(result, Exception):
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(error_message(result)))
        tensors = [pb_utils.Tensor(name, result[name]) for name in self.output_names]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def execute(self, requests: list[Any]) -> list[Any]:
        inputs = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT")
            inputs.append(None if text is None else text.as_numpy())
        return [self._response(result) for result in encode_requests(self.encoder, inputs)]

    def finalize(self) -> None:
        self.encoder = None  # type: ignore[assignment]
