"""Which chat back end runs a model: MLX on Apple silicon for MLX models, llama.cpp otherwise,
and a local OpenAI-compatible server for a model named ``openai:NAME``.

Design rule: the choice depends only on the platform and the model's format, never on a guess:
a GGUF file runs in llama.cpp (Metal on a Mac); an MLX/safetensors model directory runs in MLX
(the GPU on Apple silicon, the CPU elsewhere with ``mlx-lm[cpu]``). ``prefer`` forces a back end
and fails clearly when that back end cannot run the model.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path
from typing import Literal

from memos_desktop.errors import EngineError

EngineName = Literal["mlx", "llamacpp"]
SERVER_PREFIX = "openai:"


def is_server_model(model_id: str) -> bool:
    """A model served by the ``[openai]`` server (``openai:NAME``), not a file or catalog id."""
    return model_id.startswith(SERVER_PREFIX)


def is_apple_silicon(system: str | None = None, machine: str | None = None) -> bool:
    system = sys.platform if system is None else system
    machine = platform.machine() if machine is None else machine
    return system == "darwin" and machine == "arm64"


def mlx_available() -> bool:
    return importlib.util.find_spec("mlx_lm") is not None


def is_mlx_model(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def select_engine(
    model_path: Path,
    *,
    prefer: EngineName | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> EngineName:
    """The back end for ``model_path``. ``prefer`` forces one (an error if it cannot run it)."""
    mlx_model = is_mlx_model(model_path)
    if prefer == "llamacpp" or (prefer is None and not mlx_model):
        if mlx_model:
            raise EngineError(
                f"{model_path} is an MLX model directory; llama.cpp needs a .gguf file",
                hint="use a GGUF model, or the MLX engine",
            )
        return "llamacpp"
    if not mlx_model:
        raise EngineError(
            f"{model_path} is not an MLX model directory (config.json + *.safetensors)",
            hint="GGUF files run in llama.cpp: do not force the MLX engine for them",
        )
    if not mlx_available():
        hint = (
            "pip install mlx-lm"
            if is_apple_silicon(system, machine)
            else "pip install 'mlx-lm[cpu]' (on Linux plain mlx-lm does not install mlx)"
        )
        raise EngineError("this MLX model needs mlx-lm, which is not installed", hint=hint)
    # MLX models run in MLX everywhere: on Apple silicon on the GPU, elsewhere on the CPU.
    return "mlx"
