"""Which initializers of an ONNX graph are weights, under which Hugging Face names, how stored.

Exporters keep most parameters under their module names (`embeddings.word_embeddings.weight`,
`encoder.layer.0.attention.self.query.bias`) but store a Linear weight, transposed to [in, out]
for MatMul, as an anonymous constant (`onnx::MatMul_1234`). Its name is recovered from the node
that consumes it, whose name is the module path (`/encoder/layer.0/attention/self/query/MatMul`
-> `encoder.layer.0.attention.self.query.weight`), and it is read transposed back to [out, in].
Gemm with `transB=1` stores [out, in] already. A weight kept under a module name is read as
stored (GPT-2's Conv1D keeps [in, out], as its safetensors do).

Quantized weights (onnxruntime's `quantize_dynamic` and QDQ exports) are int8/uint8 tensors
`X_quantized` with scales `X_scale` and zero points `X_zero_point`, linked by the node that uses
them: DequantizeLinear (per tensor or per axis), MatMulInteger, QLinearMatMul, and the
com.microsoft DynamicQuantizeMatMul and MatMulIntegerToFloat; the name convention links what
no node does (a quantized Gather's table). Block-quantized and 4-bit weights are not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.onnx.proto import Graph, Initializer, Node

# TensorProto.DataType -> storage code (the safetensors code for floats).
FLOATS = {1: "F32", 10: "F16", 16: "BF16", 11: "F64"}
QUANTIZED = {2: "ONNX_U8", 3: "ONNX_I8"}
# ops whose input 1 is a weight stored [in, out] (MatMul's B); the quantized ones are normalised
# to input 1 below
_MATMULS = {"MatMul", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul"}
_MATMULS |= {"MatMulIntegerToFloat"}
# (op, input index of the weight): what names a weight after its module
_WEIGHT_USES = {("Gemm", 1), ("Gather", 0), ("Conv", 1), ("ConvTranspose", 1)}
_WEIGHT_USES |= {(op, 1) for op in _MATMULS}
_HF_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+$")
_MODULE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]*$")


@dataclass(frozen=True, slots=True)
class Weight:
    """A float tensor of the model as the graph stores it.

    Attributes:
        name: its Hugging Face name (the stored name where none can be recovered).
        data: the initializer holding its elements (float, or int8/uint8 when quantized).
        transposed: `data` holds the weight transposed ([in, out] of an [out, in] weight).
        scale: the quantization scales (quantized weights only).
        zero_point: the zero points (None: zero).
        axis: the axis of `data` the scales run along; None for one scale per tensor.
    """

    name: str
    data: Initializer
    transposed: bool = False
    scale: Initializer | None = None
    zero_point: Initializer | None = None
    axis: int | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The float tensor's shape ([out, in] for a transposed one)."""
        dims = self.data.dims
        return (dims[1], dims[0]) if self.transposed else dims


@dataclass(frozen=True, slots=True)
class _Quant:
    scale: str
    zero_point: str
    axis: int | None  # as the node says; None: found from the scale's length
    uses: tuple[tuple[Node, int], ...]  # where the float value is used


def module_path(node_name: str) -> str | None:
    """The module path of a node named by the exporter (`/encoder/layer.0/query/MatMul` ->
    `encoder.layer.0.query`), or None for a name that is no such path."""
    parts = node_name.split("/")
    if len(parts) < 3 or parts[0] != "":
        return None
    mods = parts[1:-1]
    return ".".join(mods) if all(_MODULE_PART.match(p) for p in mods) else None


def weights(graph: Graph) -> list[Weight]:
    """The float tensors of the graph (dequantized ones included) under their HF names, in
    file order, then those stored once under several names; tensors this reader cannot place
    or decode are left out."""
    inits: dict[str, Initializer] = {}
    for i in graph.initializers:
        inits.setdefault(i.name, i)
    uses: dict[str, list[tuple[Node, int]]] = {}
    for node in graph.nodes:
        for k, name in enumerate(node.inputs):
            uses.setdefault(name, []).append((node, k))
    quant = _quantized(graph.nodes, inits, uses)
    consumed = {n for q in quant.values() for n in (q.scale, q.zero_point) if n}
    out: list[Weight] = []
    taken: set[str] = set()
    for init in graph.initializers:
        if init.name in consumed or inits[init.name] is not init:
            continue
        q = quant.get(init.name)
        if q is None and init.data_type not in FLOATS:
            continue
        base = init.name.removesuffix("_quantized") if q else init.name
        name, transposed = _name(base, q.uses if q else tuple(uses.get(init.name, ())))
        if name in taken:  # a second tensor claims the module: keep it under its stored name
            name, transposed = base, False
        if name in taken or not name or (transposed and len(init.dims) != 2):
            continue
        w = Weight(name, init, transposed)
        if q is not None:
            w = _with_scales(w, q, inits)
            if w.scale is None:
                continue
        taken.add(name)
        out.append(w)
    return out + _aliases(graph.nodes, out, taken)


def _aliases(nodes: tuple[Node, ...], found: list[Weight], taken: set[str]) -> list[Weight]:
    """Weights the exporter stored once for several parameters of equal value (tied or
    deduplicated ones: all-ones norms of a fresh model), each other name an Identity node's
    output: listed under those names too."""
    by_data = {w.data.name: w for w in found}
    out = []
    for node in nodes:
        if node.op_type != "Identity" or len(node.inputs) != 1 or len(node.outputs) != 1:
            continue
        w, name = by_data.get(node.inputs[0]), node.outputs[0]
        if w is not None and _HF_NAME.match(name) and name not in taken:
            taken.add(name)
            out.append(Weight(name, w.data, w.transposed, w.scale, w.zero_point, w.axis))
    return out


def _name(stored: str, uses: tuple[tuple[Node, int], ...]) -> tuple[str, bool]:
    """(HF name, stored transposed) of a weight from its stored name and its uses."""
    if _HF_NAME.match(stored):
        return stored, False
    for node, k in uses:
        if (node.op_type, k) not in _WEIGHT_USES:
            continue
        path = module_path(node.name)
        if path is None:
            continue
        if node.op_type == "Gemm":
            transposed = node.ints.get("transB", 0) == 0
        else:
            transposed = node.op_type in _MATMULS
        return f"{path}.weight", transposed
    return stored, False


def _quantized(
    nodes: tuple[Node, ...],
    inits: dict[str, Initializer],
    uses: dict[str, list[tuple[Node, int]]],
) -> dict[str, _Quant]:
    """Quantized weight name -> its scales, zero points and uses, from the nodes (and the
    `_quantized`/`_scale`/`_zero_point` names where no node says)."""

    def is_q(name: str) -> bool:
        return name in inits and inits[name].data_type in QUANTIZED

    def arg(node: Node, k: int) -> str:
        return node.inputs[k] if len(node.inputs) > k and node.inputs[k] in inits else ""

    out: dict[str, _Quant] = {}
    for node in nodes:
        op, ins = node.op_type, node.inputs
        if op == "DequantizeLinear" and ins and is_q(ins[0]) and arg(node, 1):
            if node.ints.get("block_size", 0):
                continue  # blocked scales (opset 21): not read
            axis = node.ints.get("axis", 1)
            found = tuple(u for o in node.outputs for u in uses.get(o, ()))
            out[ins[0]] = _Quant(arg(node, 1), arg(node, 2), axis, found)
            continue
        # (weight, scale, zero point) input positions of the integer matmuls
        pos = {
            "QLinearMatMul": (3, 4, 5),
            "DynamicQuantizeMatMul": (1, 2, 3),
            "MatMulIntegerToFloat": (1, 3, 5),
            "MatMulInteger": (1, -1, 3),
        }.get(op)
        if pos is None or len(ins) <= pos[0] or not is_q(ins[pos[0]]):
            continue
        w = ins[pos[0]]
        scale = arg(node, pos[1]) if pos[1] >= 0 else _by_name(w, "_scale", inits)
        if scale and w not in out:
            out[w] = _Quant(scale, arg(node, pos[2]), None, ((node, 1),))
    for name, init in inits.items():
        if name in out or init.data_type not in QUANTIZED or not name.endswith("_quantized"):
            continue
        scale = _by_name(name, "_scale", inits)
        if scale:
            found = tuple(uses.get(name, ()))
            out[name] = _Quant(scale, _by_name(name, "_zero_point", inits), None, found)
    return out


def _by_name(quantized: str, suffix: str, inits: dict[str, Initializer]) -> str:
    name = quantized.removesuffix("_quantized") + suffix
    return name if name in inits else ""


def _with_scales(w: Weight, q: _Quant, inits: dict[str, Initializer]) -> Weight:
    """`w` with its scales and zero points, or with `scale=None` when they do not fit it."""
    scale = inits[q.scale]
    zp = inits.get(q.zero_point) if q.zero_point else None
    dims = w.data.dims
    if scale.data_type not in FLOATS or scale.data_type == 11:
        return w
    if zp is not None and (zp.data_type != w.data.data_type or zp.numel != scale.numel):
        return w
    if scale.numel == 1:
        return Weight(w.name, w.data, w.transposed, scale, zp, None)
    if len(scale.dims) != 1 or len(dims) != 2:
        return w
    n = scale.numel
    if q.axis is not None:
        axis = q.axis + len(dims) if q.axis < 0 else q.axis
        if axis not in (0, 1) or dims[axis] != n:
            return w
    elif dims[0] == n and dims[1] == n:
        # square: a MatMul weight [in, out] is quantized per output channel (onnxruntime)
        axis = 1 if w.transposed else 0
    elif n in dims:
        axis = dims.index(n)
    else:
        return w
    return Weight(w.name, w.data, w.transposed, scale, zp, axis)
