"""A tiny prompt-injection classifier built in the test, in the shape Llama Prompt Guard 2
has once exported with optimum-cli: `model.onnx` taking input_ids and attention_mask and
giving logits [benign, injection], and a Hugging Face `tokenizer.json` ([CLS] text [SEP]).

The model embeds each token (injection words on one axis, everything else on the other),
masks the padding, max-pools over the sequence and maps the pooled vector to two logits
(MatMul): a text holding an injection word scores about 0.95, one without about 0.05.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

INJECTION_WORDS = ("ignore", "previous", "instructions", "disregard", "system", "prompt")
BENIGN_WORDS = ("hello", "what", "is", "the", "weather", "in", "paris", "today", "please")
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


def vocabulary() -> dict[str, int]:
    """Token -> id: the special tokens, then the benign and injection words."""
    words = (*SPECIALS, *BENIGN_WORDS, *INJECTION_WORDS)
    return {word: i for i, word in enumerate(words)}


def write_tokenizer(path: Path) -> Path:
    """A WordLevel tokenizer.json (lower-cased, split on whitespace and punctuation)."""
    vocab = vocabulary()
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.save(str(path))
    return path


def write_model(path: Path, extra_input: str = "", outputs: int = 2) -> Path:
    """model.onnx: input_ids, attention_mask (int64 [batch, seq]) -> logits [batch, outputs].
    `extra_input` adds an input authz cannot feed (to test that it is refused)."""
    vocab = vocabulary()
    embedding = np.zeros((len(vocab), 2), np.float32)
    embedding[vocab["[UNK]"], 0] = 1.0
    for word in BENIGN_WORDS:
        embedding[vocab[word], 0] = 3.0
    for word in INJECTION_WORDS:
        embedding[vocab[word], 1] = 6.0
    weights = np.eye(2, outputs, dtype=np.float32)  # pooled [benign, injection] -> logits
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["embedded"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask", "last"], ["mask3"]),
        helper.make_node("Mul", ["embedded", "mask3"], ["masked"]),
        helper.make_node("ReduceMax", ["masked", "sequence"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "weights"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
    ]
    if extra_input:
        inputs.append(helper.make_tensor_value_info(extra_input, TensorProto.INT64, ["batch"]))
    graph = helper.make_graph(
        nodes,
        "tiny-injection-classifier",
        inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", outputs])],
        [
            numpy_helper.from_array(embedding, "embedding"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.array([2], np.int64), "last"),
            numpy_helper.from_array(np.array([1], np.int64), "sequence"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # readable by onnxruntime releases older than the onnx package
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_classifier(folder: Path) -> tuple[Path, Path]:
    """model.onnx and tokenizer.json in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_model(folder / "model.onnx"), write_tokenizer(folder / "tokenizer.json")
