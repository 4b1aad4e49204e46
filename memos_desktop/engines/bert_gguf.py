"""Convert a sentence-transformers BERT checkpoint (safetensors + tokenizer.json) to GGUF.

Design rule: no torch, ever. The conversion uses only ``safetensors`` (numpy arrays), ``gguf``
(writer, tensor-name map, special-token reader) and ``json``; it writes what llama.cpp's own
``convert_hf_to_gguf.py`` writes for a ``BertModel`` (BERT arch, WordPiece vocab in "phantom
space" form, mean pooling from the sentence-transformers ``1_Pooling`` config), so the file loads
through the unmodified llama.cpp BERT graph.

This module also holds a pure-numpy forward pass of the same checkpoint. It is the independent
reference the converted GGUF is checked against (cosine >= 0.99) before it is put in place: a
wrong tensor name, a transposed weight or a broken vocab shows up there, not in search quality
weeks later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

# Bump when the converter's output changes: cached GGUFs record it and are rebuilt on mismatch.
CONVERTER_VERSION = 1

# Files of the source checkpoint whose bytes decide the GGUF; their sha256 is recorded with it.
SOURCE_FILES = ("model.safetensors", "tokenizer.json", "config.json")

# Tensors the embedding graph does not use (llama.cpp's converter drops the same ones).
_SKIPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")

# gguf.TokenType values (kept as ints so the numpy reference does not need gguf).
_TOKEN_NORMAL = 1
_TOKEN_CONTROL = 3


@dataclass(frozen=True)
class BertConfig:
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    type_vocab: int
    vocab: int
    eps: float
    pooling: str  # "mean" | "cls"
    max_seq_length: int

    @classmethod
    def load(cls, src: Path) -> BertConfig:
        cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
        if cfg.get("model_type") != "bert" or cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{src}: not a BERT checkpoint with GELU (model_type/hidden_act)")
        pooling = "mean"
        pool_cfg = _pooling_config(src)
        if pool_cfg is not None and pool_cfg.get("pooling_mode_cls_token"):
            pooling = "cls"
        st_cfg = src / "sentence_bert_config.json"
        max_seq = int(cfg["max_position_embeddings"])
        if st_cfg.is_file():
            st = json.loads(st_cfg.read_text(encoding="utf-8"))
            max_seq = int(st.get("max_seq_length", max_seq))
        return cls(
            hidden=int(cfg["hidden_size"]),
            layers=int(cfg["num_hidden_layers"]),
            heads=int(cfg["num_attention_heads"]),
            ffn=int(cfg["intermediate_size"]),
            max_positions=int(cfg["max_position_embeddings"]),
            type_vocab=int(cfg.get("type_vocab_size", 2)),
            vocab=int(cfg["vocab_size"]),
            eps=float(cfg.get("layer_norm_eps", 1e-12)),
            pooling=pooling,
            max_seq_length=max_seq,
        )


def _pooling_config(src: Path) -> dict[str, Any] | None:
    """The sentence-transformers Pooling module's config, found through modules.json."""
    modules = src / "modules.json"
    if not modules.is_file():
        return None
    for mod in json.loads(modules.read_text(encoding="utf-8")):
        if mod.get("type") == "sentence_transformers.models.Pooling":
            cfg_path = src / mod["path"] / "config.json"
            if cfg_path.is_file():
                data: dict[str, Any] = json.loads(cfg_path.read_text(encoding="utf-8"))
                return data
    return None


def _vocab(src: Path, n_vocab: int) -> tuple[list[str], list[int]]:
    """Token strings in id order, in llama.cpp's phantom-space form, and their token types.

    WordPiece marks continuations with ``##``; llama.cpp's WPM tokenizer instead marks word
    *starts* with U+2581. Special (added) tokens stay as they are and are CONTROL.
    """
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    model = tok["model"]
    if model.get("type") != "WordPiece":
        raise ValueError(f"{src}: tokenizer is {model.get('type')}, not WordPiece")
    by_id: dict[int, str] = {int(i): t for t, i in model["vocab"].items()}
    special = {int(a["id"]) for a in tok.get("added_tokens", []) if a.get("special")}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        t = by_id.get(i)
        if t is None:  # holes in the id space: llama.cpp's converter pads them the same way
            tokens.append(f"[PAD{i}]")
            types.append(_TOKEN_CONTROL)
        elif i in special:
            tokens.append(t)
            types.append(_TOKEN_CONTROL)
        else:
            tokens.append(t[2:] if t.startswith("##") else "\u2581" + t)
            types.append(_TOKEN_NORMAL)
    return tokens, types


def convert(src: Path, out: Path, *, name: str, f16: bool = True) -> None:
    """Write ``out`` (overwriting it) from the checkpoint in ``src``. Callers make it atomic."""
    import gguf
    from safetensors.numpy import load_file

    cfg = BertConfig.load(src)
    w = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    w.add_name(name)
    w.add_context_length(cfg.max_positions)
    w.add_embedding_length(cfg.hidden)
    w.add_feed_forward_length(cfg.ffn)
    w.add_block_count(cfg.layers)
    w.add_head_count(cfg.heads)
    w.add_layer_norm_eps(cfg.eps)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.CLS if cfg.pooling == "cls" else gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)

    tokens, types = _vocab(src, cfg.vocab)
    w.add_tokenizer_model("bert")
    # What convert_hf_to_gguf.py detects for the uncased BERT vocab (same as bge-small-en-v1.5);
    # llama.cpp ignores the pre-tokenizer name for WPM vocabs, it is kept for tools that read it.
    w.add_tokenizer_pre("bert-bge")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(cfg.type_vocab)
    # CLS/SEP/UNK/PAD/MASK ids and add-bos/add-eos flags, read from the tokenizer files
    # exactly as llama.cpp's converter does.
    gguf.SpecialVocab(src, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, cfg.layers)
    # Kept in f32 by llama.cpp's converter too: tiny, and they are added, not multiplied.
    keep_f32 = ("position_embd.weight", "token_types.weight")
    weights = load_file(str(src / "model.safetensors"))
    for hf_name, arr in weights.items():
        key = hf_name.removeprefix("bert.")
        if key in _SKIPPED or key.startswith("cls."):
            continue
        gg_name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if gg_name is None:
            raise ValueError(f"{src}: tensor {hf_name!r} has no GGUF name for BERT")
        data = arr.astype(np.float32)
        if f16 and data.ndim == 2 and gg_name not in keep_f32:
            w.add_tensor(gg_name, data.astype(np.float16))
        else:
            w.add_tensor(gg_name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --- numpy reference -----------------------------------------------------------------------


def _erf(x: F32) -> F32:
    # Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7): numpy has no erf and BERT uses the exact
    # (erf) GELU, not the tanh approximation.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-a * a)
    r: F32 = (s * y).astype(np.float32)
    return r


def _gelu(x: F32) -> F32:
    r: F32 = (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)
    return r


def _layer_norm(x: F32, g: F32, b: F32, eps: float) -> F32:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    r: F32 = ((x - mu) / np.sqrt(var + eps) * g + b).astype(np.float32)
    return r


class NumpyBert:
    """A slow, obviously-correct forward pass used only to check converted files."""

    def __init__(self, src: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.cfg = BertConfig.load(src)
        raw = load_file(str(src / "model.safetensors"))
        self.w: dict[str, F32] = {
            k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()
        }
        self.tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(self.cfg.max_seq_length)

    def token_ids(self, text: str) -> list[int]:
        return list(self.tok.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> F32:
        out = np.stack([self._one(self.token_ids(t)) for t in texts])
        return out.astype(np.float32)

    def _one(self, ids: list[int]) -> F32:
        c, w = self.cfg, self.w
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c.eps)
        hd = c.hidden // c.heads
        for i in range(c.layers):
            p = f"encoder.layer.{i}."

            def lin(h: F32, name: str, p: str = p) -> F32:
                return (h @ w[p + name + ".weight"].T + w[p + name + ".bias"]).astype(np.float32)

            q = lin(x, "attention.self.query").reshape(n, c.heads, hd).transpose(1, 0, 2)
            k = lin(x, "attention.self.key").reshape(n, c.heads, hd).transpose(1, 0, 2)
            v = lin(x, "attention.self.value").reshape(n, c.heads, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, c.hidden).astype(np.float32)
            x = _layer_norm(
                x + lin(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                c.eps,
            )
            h = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(
                x + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], c.eps
            )
        v0 = x[0] if c.pooling == "cls" else x.mean(0)
        r: F32 = (v0 / max(float(np.linalg.norm(v0)), 1e-12)).astype(np.float32)
        return r
