"""ONNX exports of a model's weights, laid out as optimum and transformers.js publish them.

`write_onnx` rebuilds the model's modules from its parameter names (Linear, Embedding, GPT-2's
Conv1D, LayerNorm, RMSNorm), exports them with torch's TorchScript ONNX exporter (the one
optimum uses: Linear weights become `onnx::MatMul_N` constants stored [in, out], nodes are named
by module path, `/encoder/layer.0/attention/self/query/MatMul`), and quantizes with
onnxruntime's `quantize_dynamic`, as transformers.js does for `model_quantized.onnx`.

The graph computes no real forward pass: each module is applied to an activation of its
width, so that every parameter is used and exported under the names and layouts the exporter
gives real models. It is a valid ONNX model (onnx.checker passes, onnxruntime runs it).

Needs the `lab` extra (`onnx`, `onnxruntime`); the reader (`hub.onnx`) needs neither.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import torch
from torch import nn

# variant -> (file under onnx/, quantize_dynamic weight type or None, per channel)
VARIANTS: dict[str, tuple[str, str | None, bool]] = {
    "fp32": ("model.onnx", None, False),
    "fp16": ("model_fp16.onnx", None, False),
    "uint8": ("model_quantized.onnx", "QUInt8", False),
    "int8": ("model_quantized.onnx", "QInt8", False),
    "uint8-per-channel": ("model_quantized.onnx", "QUInt8", True),
    "int8-per-channel": ("model_quantized.onnx", "QInt8", True),
}
# 2-D weights looked up by index, not multiplied: embedding tables
_EMBEDDING = re.compile(
    r"(embeddings?|embed_tokens|wte|wpe|embed_positions)\.weight$|_embeddings\."
)
# GPT-2's Conv1D: weight stored [in, out], applied as x @ W + b
_CONV1D = re.compile(r"\.(c_attn|c_proj|c_fc)\.weight$")


class _Conv1D(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], self.weight.shape[1])
        flat = x.reshape(-1, x.shape[-1])
        out = (
            torch.addmm(self.bias, flat, self.weight)
            if self.bias is not None
            else flat @ self.weight
        )
        return out.reshape(shape)


class _RMSNorm(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class _Extra(nn.Module):
    """A parameter no module type here takes (a lone bias), under its own name: summed into
    the output."""

    def __init__(self, attr: str, value: torch.Tensor) -> None:
        super().__init__()
        self.attr = attr
        self.register_parameter(attr, nn.Parameter(value))

    def forward(self) -> torch.Tensor:
        return getattr(self, self.attr).sum()


def _leaf(prefix: str, params: dict[str, torch.Tensor]) -> nn.Module | None:
    w, b = params.get(f"{prefix}.weight"), params.get(f"{prefix}.bias")
    if w is None:
        return None
    if w.dim() == 2 and _EMBEDDING.search(f"{prefix}.weight"):
        return nn.Embedding.from_pretrained(w.clone(), freeze=False)
    if w.dim() == 2 and _CONV1D.search(f"{prefix}.weight"):
        return _Conv1D(w.clone(), None if b is None else b.clone())
    if w.dim() == 2:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if b is not None and lin.bias is not None:
                lin.bias.copy_(b)
        return lin
    if w.dim() == 1 and b is not None:
        ln = nn.LayerNorm(w.shape[0])
        with torch.no_grad():
            ln.weight.copy_(w)
            ln.bias.copy_(b)
        return ln
    if w.dim() == 1:
        return _RMSNorm(w.clone())
    return None


class _Scope(nn.Module):
    """A module path's container: calls on into its child, so that the exporter names the
    nodes by the whole path (`/encoder/layer.0/attention/self/query/MatMul`)."""

    def forward(self, path: tuple[str, ...], x: torch.Tensor | None) -> torch.Tensor:
        child = self.get_submodule(path[0])
        if len(path) > 1:
            return child(path[1:], x)
        return child() if x is None else child(x)


def _call_path(dotted: str) -> tuple[str, ...]:
    """The modules a call goes through: list items are called by their parent, as in
    `for layer in self.layers` (`model.layers.0.mlp` -> `model`, `layers.0`, `mlp`)."""
    out: list[str] = []
    for part in dotted.split("."):
        if part.isdigit() and out:
            out[-1] = f"{out[-1]}.{part}"
        else:
            out.append(part)
    return tuple(out)


def _widths(m: nn.Module) -> tuple[int, int]:
    """(input, output) width of a module, as plain ints (shapes read while tracing are not)."""
    if isinstance(m, nn.Embedding):
        return m.embedding_dim, m.embedding_dim
    if isinstance(m, nn.Linear):
        return m.in_features, m.out_features
    if isinstance(m, _Conv1D):
        return int(m.weight.shape[0]), int(m.weight.shape[1])
    if isinstance(m, _Extra):
        return 0, 0
    w = int(m.weight.shape[0])  # type: ignore[index]
    return w, w


class _Tree(_Scope):
    """The modules of a model under their dotted names, applied in parameter order."""

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        floats = {n: t.float() for n, t in params.items() if t.is_floating_point()}
        self.order: list[tuple[str, tuple[int, int], bool]] = []  # name, widths, embedding
        done: set[str] = set()
        for name in floats:
            prefix, _, leafname = name.rpartition(".")
            if prefix in done or not prefix:
                continue
            module = _leaf(prefix, floats) if leafname in ("weight", "bias") else None
            if module is None:
                module = _Extra(leafname, floats[name].clone())
            done.add(prefix)
            self._place(prefix, module)
            self.order.append((prefix, _widths(module), isinstance(module, nn.Embedding)))

    def _place(self, dotted: str, module: nn.Module) -> None:
        parent: nn.Module = self
        parts = dotted.split(".")
        for part in parts[:-1]:
            if part not in parent._modules:
                parent.add_module(part, _Scope())
            parent = parent._modules[part]  # type: ignore[assignment]
        parent.add_module(parts[-1], module)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        acts: dict[int, torch.Tensor] = {}
        total = ids.new_zeros((), dtype=torch.float32)
        for name, (_, width), embedding in self.order:  # embeddings first: they give widths
            if embedding:
                rows = int(self.get_submodule(name).weight.shape[0])  # type: ignore[index]
                x = super().forward(_call_path(name), ids % rows)
                acts[width] = acts[width] + x if width in acts else x
        base = next(iter(acts.values()), None)
        for name, (width, out), embedding in self.order:
            path = _call_path(name)
            if embedding:
                continue
            if width == 0:
                total = total + super().forward(path, None)
                continue
            found = acts.get(width)
            if found is None:  # no activation of this width yet: one made from the input
                seed = base if base is not None else ids.float().unsqueeze(-1)
                found = seed.mean(-1, keepdim=True).expand(*seed.shape[:-1], width)
            y = super().forward(path, found)
            acts[out] = y
            total = total + y.mean()
        return total


def _export(module: nn.Module, path: Path, *, half: bool) -> None:
    ids = torch.arange(8).reshape(1, 8)
    if half:
        module = module.half()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, not gone
        torch.onnx.export(
            module,
            (ids,),
            str(path),
            input_names=["input_ids"],
            output_names=["output"],
            dynamo=False,
            do_constant_folding=True,
        )


def write_onnx(
    params: dict[str, torch.Tensor],
    config: dict,
    out: Path,
    *,
    variant: str,
    external_data: bool = False,
    with_fp32: bool = False,
) -> Path:
    """Write an ONNX export of `params` as transformers.js repos hold them.

    Args:
        params: the model's tensors under their Hugging Face names.
        config: written as `config.json` at the root.
        out: the repo folder (created).
        variant: `fp32` (`onnx/model.onnx`), `fp16` (`model_fp16.onnx`), or a dynamic
            quantization: `uint8`, `int8`, `uint8-per-channel`, `int8-per-channel`
            (`model_quantized.onnx`).
        external_data: the fp32/fp16 export keeps its weights in `<file>_data` beside it,
            as optimum does for models over 2 GB.
        with_fp32: also keep `onnx/model.onnx` beside a quantized export (a reader then reads
            the fp32 one).

    Returns:
        `out`.
    """
    import onnx

    name, weight_type, per_channel = VARIANTS[variant]
    folder = out / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    tree = _Tree(params).eval()
    target = folder / name
    float_path = folder / ("model.onnx" if weight_type else name)
    _export(tree, float_path, half=variant == "fp16")
    if weight_type is not None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.disable(logging.WARNING)  # its advice to pre-process goes to the root logger
        try:
            quantize_dynamic(
                float_path,
                target,
                per_channel=per_channel,
                weight_type=getattr(QuantType, weight_type),
            )
        finally:
            logging.disable(logging.NOTSET)
        if not with_fp32:
            float_path.unlink()
    if external_data:
        model = onnx.load(str(target))
        onnx.save_model(
            model,
            str(target),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{target.name}_data",
            size_threshold=1024,
        )
    return out
