"""The parts of an ONNX `ModelProto` that name and place its weights, read by `hub.onnx.wire`.

Read: the graph's initializers (`TensorProto`: name, dims, data_type, where the data lies:
`raw_data`, packed `float_data`/`double_data`/`int32_data`, or `external_data`) and its nodes
(name, op_type, domain, inputs, outputs, integer attributes such as Gemm's `transB` and
DequantizeLinear's `axis`). Never read: tensor data, subgraphs of If/Loop nodes, functions,
value infos, docs. Field numbers are those of onnx/onnx.proto (stable since IR version 3).

The walk is bounded: at most `MAX_NODES` nodes and `MAX_INITIALIZERS` initializers, names of at
most `MAX_STRING` bytes, `MAX_DIMS` dimensions, `MAX_FIELDS` fields read and `MAX_PARSED` bytes
fetched for all of it (a hostile file costs seconds at most).
Nesting is fixed by this code (model > graph > node > attribute, graph > tensor > entry): a
file cannot make it recurse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.onnx.wire import LEN, VARINT, Cursor, ReadRange, WireError, signed64

MAX_NODES = 100_000  # a 405B Llama's graph has about 8,000; a QDQ one three times that
MAX_INITIALIZERS = 100_000
# fields read (not stepped over): about 10 a node; parsing runs at a few microseconds a field
MAX_FIELDS = 1_000_000
MAX_STRING = 4096
MAX_DIMS = 64
MAX_NODE_IO = 4096  # inputs or outputs of one node (a Concat of every layer's cache ...)
MAX_ATTRIBUTES = 1024
MAX_EXTERNAL_ENTRIES = 16
MAX_PARSED = 64 * 2**20  # a 70B model's graph is a few MB of descriptions
MAX_ELEMENTS = 2**48

# TensorProto.data_location
EXTERNAL = 1


@dataclass(frozen=True, slots=True)
class Initializer:
    """One initializer (a `TensorProto` of the graph).

    Attributes:
        name: as stored (`onnx::MatMul_1234`, `embeddings.word_embeddings.weight`).
        dims: dimensions, outermost first.
        data_type: `TensorProto.DataType` (1 FLOAT, 2 UINT8, 3 INT8, 10 FLOAT16, 16 BFLOAT16 ...).
        span: absolute [start, end) of its data in the .onnx file, when stored inside it.
        encoding: how the data at `span` is laid out: "raw" (little-endian elements: `raw_data`,
            or packed `float_data`/`double_data`), "varint" (packed `int32_data`), or "" when
            it has no data this reader can place (none, unpacked or repeated data fields,
            segments, strings).
        external: `external_data` key -> value (location, offset, length) when
            `data_location` is EXTERNAL; empty otherwise.
    """

    name: str
    dims: tuple[int, ...]
    data_type: int
    span: tuple[int, int] | None
    encoding: str
    external: Mapping[str, str] = field(default_factory=dict)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the graph: what it computes and from what."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    ints: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Graph:
    """The top-level graph of a model, as far as naming and placing weights needs.

    Attributes:
        initializers: in file order.
        nodes: in file order.
        producer: `producer_name` (`pytorch`, `onnxruntime.quantization` ...).
        first_data: absolute offset of the first tensor data byte in the file (its size when
            every tensor lies elsewhere).
        parsed: bytes fetched to parse it.
        digest: sha1 of the bytes parsed (descriptions, not data).
    """

    initializers: tuple[Initializer, ...]
    nodes: tuple[Node, ...]
    producer: str
    first_data: int
    parsed: int
    digest: str


def read_graph(read: ReadRange, size: int) -> Graph:
    """Parse a serialized ModelProto of `size` bytes through `read(start, end)`.

    Raises:
        WireError: the file is not a ModelProto within the bounds (the reason in its text).
    """
    cur = Cursor(read, size, max_parsed=MAX_PARSED, max_fields=MAX_FIELDS)
    inits: list[Initializer] = []
    nodes: list[Node] = []
    producer = ""
    seen_graph = False
    while cur.pos < size:
        num, wire = cur.tag()
        if num == 7 and wire == LEN:  # ModelProto.graph
            if seen_graph:
                raise WireError("has two graphs")
            seen_graph = True
            _graph(cur, cur.submessage(size), inits, nodes)
        elif num == 2 and wire == LEN:  # producer_name
            producer = cur.string(size, MAX_STRING, "producer name")
        else:
            cur.skip_field(wire, size)
    if not seen_graph:
        raise WireError("has no graph")
    spans = [i.span[0] for i in inits if i.span is not None]
    return Graph(
        initializers=tuple(inits),
        nodes=tuple(nodes),
        producer=producer,
        first_data=min(spans, default=size),
        parsed=cur.parsed,
        digest=cur.digest,
    )


def _graph(cur: Cursor, end: int, inits: list[Initializer], nodes: list[Node]) -> None:
    while cur.pos < end:
        num, wire = cur.tag()
        if num == 1 and wire == LEN:  # GraphProto.node
            if len(nodes) >= MAX_NODES:
                raise WireError(f"has more than {MAX_NODES} nodes")
            nodes.append(_node(cur, cur.submessage(end)))
        elif num == 5 and wire == LEN:  # GraphProto.initializer
            if len(inits) >= MAX_INITIALIZERS:
                raise WireError(f"has more than {MAX_INITIALIZERS} initializers")
            inits.append(_tensor(cur, cur.submessage(end)))
        else:
            cur.skip_field(wire, end)
    _at_end(cur, end, "graph")


def _at_end(cur: Cursor, end: int, what: str) -> None:
    if cur.pos != end:
        raise WireError(f"has a {what} whose fields run past its end (byte {end})")


def _node(cur: Cursor, end: int) -> Node:
    inputs: list[str] = []
    outputs: list[str] = []
    name = op_type = domain = ""
    ints: dict[str, int] = {}
    attributes = 0
    while cur.pos < end:
        num, wire = cur.tag()
        if num in (1, 2) and wire == LEN:
            io = inputs if num == 1 else outputs
            if len(io) >= MAX_NODE_IO:
                raise WireError(f"has a node with more than {MAX_NODE_IO} inputs or outputs")
            io.append(cur.string(end, MAX_STRING, "node input or output name"))
        elif num == 3 and wire == LEN:
            name = cur.string(end, MAX_STRING, "node name")
        elif num == 4 and wire == LEN:
            op_type = cur.string(end, MAX_STRING, "node op_type")
        elif num == 7 and wire == LEN:
            domain = cur.string(end, MAX_STRING, "node domain")
        elif num == 5 and wire == LEN:
            attributes += 1
            if attributes > MAX_ATTRIBUTES:
                raise WireError(f"has a node with more than {MAX_ATTRIBUTES} attributes")
            key, value = _attribute(cur, cur.submessage(end))
            if key and value is not None:
                ints[key] = value
        else:
            cur.skip_field(wire, end)
    _at_end(cur, end, "node")
    return Node(name, op_type, domain, tuple(inputs), tuple(outputs), ints)


def _attribute(cur: Cursor, end: int) -> tuple[str, int | None]:
    """(name, its integer value `i` when it has one); tensors and subgraphs are skipped."""
    name, value = "", None
    while cur.pos < end:
        num, wire = cur.tag()
        if num == 1 and wire == LEN:
            name = cur.string(end, MAX_STRING, "attribute name")
        elif num == 3 and wire == VARINT:
            value = signed64(cur.varint())
        else:
            cur.skip_field(wire, end)
    _at_end(cur, end, "node attribute")
    return name, value


def _tensor(cur: Cursor, end: int) -> Initializer:
    dims: list[int] = []
    data_type = 0
    name = ""
    span: tuple[int, int] | None = None
    encoding = ""
    fields = 0  # data fields seen: more than one is a layout this reader does not place
    location = 0
    external: dict[str, str] = {}
    while cur.pos < end:
        num, wire = cur.tag()
        if num == 1 and wire == VARINT:
            dims.append(_dim(cur.varint()))
        elif num == 1 and wire == LEN:  # packed dims
            stop = cur.submessage(end)
            while cur.pos < stop:
                dims.append(_dim(cur.varint()))
                if len(dims) > MAX_DIMS:
                    raise WireError(f"has a tensor of more than {MAX_DIMS} dimensions")
            if cur.pos != stop:
                raise WireError("has a tensor whose packed dims run past their field")
        elif num == 2 and wire == VARINT:
            data_type = cur.varint()
        elif num == 8 and wire == LEN:
            name = cur.string(end, MAX_STRING, "tensor name")
        elif num in (9, 4, 10, 5) and wire == LEN:  # raw_data, packed float/double/int32_data
            n = cur.length(end)
            span, encoding = (cur.pos, cur.pos + n), "varint" if num == 5 else "raw"
            fields += 1
            cur.skip(n)
        elif num in (4, 5, 6, 7, 10, 11, 3):  # unpacked data, strings, int64s, segment
            fields += 2  # nothing this reader can place
            cur.skip_field(wire, end)
        elif num == 13 and wire == LEN:
            if len(external) >= MAX_EXTERNAL_ENTRIES:
                raise WireError(f"has a tensor with more than {MAX_EXTERNAL_ENTRIES} external keys")
            key, value = _entry(cur, cur.submessage(end))
            external[key] = value
        elif num == 14 and wire == VARINT:
            location = cur.varint()
        else:
            cur.skip_field(wire, end)
        if len(dims) > MAX_DIMS:
            raise WireError(f"has a tensor of more than {MAX_DIMS} dimensions")
    _at_end(cur, end, "tensor")
    numel = 1
    for d in dims:
        numel *= d
        if numel > MAX_ELEMENTS:
            raise WireError(f"has a tensor {name!r} of more than 2^48 elements")
    if location == EXTERNAL:
        return Initializer(name, tuple(dims), data_type, None, "", external)
    if fields != 1:
        span, encoding = None, ""
    return Initializer(name, tuple(dims), data_type, span, encoding)


def _dim(v: int) -> int:
    d = signed64(v)
    if d < 0:
        raise WireError(f"has a tensor dimension {d} < 0")
    return d


def _entry(cur: Cursor, end: int) -> tuple[str, str]:
    key = value = ""
    while cur.pos < end:
        num, wire = cur.tag()
        if num == 1 and wire == LEN:
            key = cur.string(end, MAX_STRING, "external data key")
        elif num == 2 and wire == LEN:
            value = cur.string(end, MAX_STRING, "external data value")
        else:
            cur.skip_field(wire, end)
    _at_end(cur, end, "external data entry")
    return key, value
