"""Read an ONNX file into a ModelGraph without touching weight data.

The protobuf is loaded with ``load_external_data=False``: external weight files are
never opened (a missing one is fine), and initializers contribute only their dims and
dtype. Symbolic dims given in ``dims`` are written into the graph inputs *before*
ONNX shape inference runs, so inference sees concrete shapes and resolves Reshape
chains by itself; the op rules then fill whatever inference left open.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import onnx
from onnx import numpy_helper

from foresize.core.errors import InputError, UnknownNameError, UsageError
from foresize.core.guard import graph_errors
from foresize.core.parallel import Meanwhile
from foresize.core.paths import missing_file
from foresize.graph.flops import propagate_shapes
from foresize.graph.model import (
    DTYPES,
    FORK_NODES,
    UNKNOWN_DTYPE,
    AttrValue,
    Dim,
    ModelGraph,
    Node,
    Scope,
    Shape,
    TensorInfo,
    collector_paused,
    topological_order,
)
from foresize.graph.ops.fusion import fuse

MAX_ELEMENTS = 2**53  # beyond this an element count is no tensor (and loses float precision)
MAX_CONSTANT_ELEMENTS = 64  # integer tensors this small are kept as values (shapes, axes)
KEEP_DATA = 4096  # initializers up to this many elements keep their data for inference
T = TypeVar("T")


@collector_paused()
def read_onnx(path: str | Path, *, dims: Mapping[str, int] | None = None) -> ModelGraph:
    """Read ``path``; ``dims`` binds symbolic dims by name (``{"batch": 8}``)."""
    path = Path(path)
    model = _load(path)
    _drop_weight_data(model.graph)
    bound = dict(dims or {})
    _check_dims(model, bound, path)
    _bind_inputs(model.graph, bound)
    with graph_errors(str(path)):
        model, (parsed, kernels) = _inferred_meanwhile(model, lambda: _read(model.graph))
        graph = _graph(model.graph, bound, path, {}, {}, parsed, kernels)
        return _check_sizes(propagate_shapes(graph), path)


def _read(g: Any) -> tuple[_Nodes, tuple[Node, ...] | None]:
    """The nodes of ``g``, and on a graph of ``FORK_NODES`` nodes or more its kernels.

    Both read only what inference does not change, and run while it does
    (:func:`_inferred_meanwhile`): ONNX's inference of a large graph outlasts reading its
    nodes, and fusing them (half a second at 200k nodes) fills the wait.
    """
    parsed = _read_nodes(g)
    if len(g.node) < FORK_NODES:
        return parsed, None
    return parsed, _fused_ahead(g, parsed)


def _fused_ahead(g: Any, parsed: _Nodes) -> tuple[Node, ...] | None:
    """Fusion's kernels from the nodes, the parameters and the graph's inputs and outputs
    alone (all :func:`~foresize.graph.ops.fusion.fuse` reads), before shapes are inferred;
    None where :func:`_graph` will change the nodes (bodies to read, an order to sort).
    """
    nodes, producer, _, constants, with_bodies, read_before_made = parsed
    if with_bodies or any(name in producer for name in read_before_made):
        return None
    params = {init.name: TensorInfo(init.name, tuple(int(d) for d in init.dims),
                                    *DTYPES.get(init.data_type, UNKNOWN_DTYPE), is_param=True)
              for init in g.initializer}
    return fuse(ModelGraph(
        name=g.name, nodes=tuple(nodes), tensors=params,
        inputs=tuple(v.name for v in g.input if v.name not in params),
        outputs=tuple(v.name for v in g.output), constants=constants,
    ))


def _infer(model: Any) -> Any:
    """``model`` with ONNX's inferred shapes; as it was where inference fails.

    Inference is best effort: where it fails, the op rules' propagation takes over.
    """
    with contextlib.suppress(Exception):
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    return model


def _inferred_bytes(model: Any) -> bytes:
    """``onnx.shape_inference.infer_shapes(model, data_prop=True)``, serialized; empty
    where inference raises (the model is then used as read, as :func:`_infer` leaves it).

    Straight from ONNX's engine, which takes and returns bytes, where it is found: the
    public function parses them into a model that the child would serialize again.
    """
    try:
        try:
            from onnx.onnx_cpp2py_export import shape_inference as engine
        except ImportError:  # pragma: no cover - an ONNX build laid out otherwise
            return bytes(onnx.shape_inference.infer_shapes(model, data_prop=True)
                         .SerializeToString())
        return bytes(engine.infer_shapes(model.SerializeToString(), check_type=False,
                                         strict_mode=False, data_prop=True))
    except Exception:
        return b""


def _inferred_meanwhile(model: Any, read: Callable[[], T]) -> tuple[Any, T]:
    """``model`` as :func:`_infer` leaves it, and ``read()``: at once where that pays.

    ONNX's inference holds the GIL, for a second and more on a graph of 200k nodes. On
    Linux, a graph of ``FORK_NODES`` nodes or more is inferred in a forked child, on
    another core, while this process reads the nodes (inference changes none); the child
    sends the model back serialized (:class:`~foresize.core.parallel.Meanwhile`). Where
    the child cannot deliver, inference runs here, as it does for smaller graphs.
    """
    with Meanwhile(lambda: _inferred_bytes(model),
                   enabled=len(model.graph.node) >= FORK_NODES) as child:
        parsed = read()
        data = child.result()
    if data is None:
        return _infer(model), parsed
    if not data:  # inference raised in the child
        return model, parsed
    with contextlib.suppress(Exception):
        return onnx.load_from_string(data), parsed
    return model, parsed


def _check_sizes(graph: ModelGraph, path: Path) -> ModelGraph:
    """Refuse negative dims and tensors beyond ``MAX_ELEMENTS``, the file's or inferred.

    A crafted file can declare ``[-5, 3]`` or reshape to ``[2**62, 2**62]``; priced as
    given they read as 0 bytes or overflow the cost columns, so they end here instead,
    naming the tensor and the node that makes it.
    """
    for graphs in _nested(graph):
        tensors = graphs.tensors.values()
        # a graph has few distinct shapes (the reader shares one tuple per type): when all
        # of them pass, no tensor needs a look; otherwise the search below names the first
        if not all(map(_sane, {tensor.shape for tensor in tensors})):
            # inputs and weights first: the error names the cause, not the first node it reaches
            for tensor in chain((t for t in tensors if t.producer is None),
                                (t for t in tensors if t.producer is not None)):
                _check_shape(tensor, graphs, path)
        passed: set[tuple[str, str]] = set()
        for node in graphs.nodes:
            if node.op_type in _SHAPE_OPERAND:
                _check_shape_operand(node, graphs.constants, path, passed)
    return graph


def _sane(shape: Shape | None) -> bool:
    """No negative dim, and at most ``MAX_ELEMENTS`` elements over the integer dims."""
    if not shape:
        return True
    dims = [d for d in shape if isinstance(d, int)]
    return min(dims, default=0) >= 0 and math.prod(dims) <= MAX_ELEMENTS


def _check_shape(tensor: TensorInfo, graph: ModelGraph, path: Path) -> None:
    """Refuse a shape that is not ``_sane``, saying why: a negative dim, or too many elements."""
    shape = tensor.shape
    if not shape or _sane(shape):
        return
    dims = [d for d in shape if isinstance(d, int)]
    negative = next((d for d in dims if d < 0), None)
    if negative is not None:
        raise InputError(f"{path}: {_whose(tensor, graph)} has a negative dim "
                         f"({negative}) in shape {list(shape)}")
    if math.prod(dims) > MAX_ELEMENTS:
        raise InputError(
            f"{path}: {_whose(tensor, graph)} of shape {list(shape)} holds "
            f"{math.prod(dims):.3g} elements, beyond 2^53; not a model that fits "
            "any device",
            hint="check the file's dims, or bind symbolic ones with smaller --dim",
        )


def _whose(tensor: TensorInfo, graph: ModelGraph) -> str:
    """A tensor named for an error: with the node that makes it, or what it is."""
    if tensor.producer is not None:
        op = next((n.op_type for n in graph.nodes if n.name == tensor.producer), "?")
        return f"node {tensor.producer!r} ({op}): output {tensor.name!r}"
    if tensor.is_param:
        return f"initializer {tensor.name!r}"
    if tensor.name in graph.inputs:
        return f"graph input {tensor.name!r}"
    return f"tensor {tensor.name!r}"


# ops whose operand at this index is a target shape: its product is an element count
_SHAPE_OPERAND = {"Reshape": 1, "Expand": 1, "ConstantOfShape": 0}


def _check_shape_operand(node: Node, constants: Mapping[str, tuple[int, ...]],
                         path: Path, passed: set[tuple[str, str]]) -> None:
    """A constant target shape must be one the op can make, and of at most ``MAX_ELEMENTS``.

    Inference may leave such an output unsized (``Reshape`` to ``[2**62, 2**62]``, to
    ``[-3, 2]``), and the tensor check above then has nothing to look at. Reshape allows
    one ``-1`` (inferred) and ``0`` (copied) beside sizes; Expand and ConstantOfShape
    allow sizes only. ``passed`` holds the (op, operand) pairs already found valid: the
    blocks of a deep model reshape to a few shared shape constants, each checked once.
    """
    index = _SHAPE_OPERAND[node.op_type]
    if len(node.inputs) <= index or node.inputs[index] not in constants:
        return
    operand = node.inputs[index]
    if (node.op_type, operand) in passed:
        return
    shape = constants[operand]
    where = (f"{path}: node {node.name!r} ({node.op_type}): shape operand {operand!r} = "
             f"{list(shape)}")
    lowest = -1 if node.op_type == "Reshape" else 0
    if any(d < lowest for d in shape) or shape.count(-1) > 1:
        allowed = "sizes, one -1 and 0" if node.op_type == "Reshape" else "sizes >= 0"
        raise InputError(f"{where} is not a shape ({node.op_type} allows {allowed})")
    if math.prod(d for d in shape if d > 0) > MAX_ELEMENTS:
        raise InputError(f"{where} holds more than 2^53 elements; not a model that fits "
                         "any device")
    passed.add((node.op_type, operand))


def _nested(graph: ModelGraph) -> list[ModelGraph]:
    """``graph`` and every control-flow body inside it, iteratively (bodies nest deep)."""
    found, stack = [], [graph]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(body for node in current.nodes if node.subgraphs  # few nodes have one
                     for body in node.subgraphs.values())
    return found


def _check_acyclic(nodes: tuple[Node, ...], path: Path) -> None:
    """Refuse a graph whose nodes feed each other in a loop (ONNX graphs are DAGs; a
    loop belongs in a Loop node's body), in one pass over ``topological_order``'s result.
    """
    position = {out: i for i, node in enumerate(nodes) for out in node.outputs if out}
    for i, node in enumerate(nodes):
        for name in node.inputs:
            if position.get(name, -1) >= i:
                raise InputError(
                    f"{path}: the graph has a cycle: node {node.name!r} ({node.op_type}) "
                    f"reads {name!r}, which it or a later node produces"
                )


def _load(path: Path) -> Any:
    """Load the protobuf, turning every way a file can be wrong into one InputError."""
    if not path.is_file():
        raise missing_file(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable ONNX model ({reason})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise InputError(f"{path}: not an ONNX model (no IR version or no graph nodes)")
    return model


def _drop_weight_data(graph: Any) -> None:
    """Clear the inline data of initializers too large to be kept as constants, in place.

    Only dims and dtype are read from weights, and shape inference serialises the whole
    model: with weights inline (a 500 MB GPT-2) it took seconds, against milliseconds
    for the same graph with external weights. Small tensors keep their data: inference
    reads values such as Reshape shapes and Resize scales from them.
    """
    for init in graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL and math.prod(init.dims) > KEEP_DATA:
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                          "uint64_data", "string_data"):  # fmt: skip
                init.ClearField(field)


def _symbolic_names(model: Any) -> set[str]:
    """Dim names the file declares anywhere: the ones a user can bind."""
    g = model.graph
    return {
        d.dim_param
        for value in (*g.input, *g.value_info, *g.output)
        for d in value.type.tensor_type.shape.dim
        if d.HasField("dim_param")
    }


def _check_dims(model: Any, dims: Mapping[str, int], path: Path) -> None:
    """Reject a dim name the model does not use (a typo) and non-positive values."""
    valid = sorted(_symbolic_names(model))
    for name, value in dims.items():
        if name not in valid:
            if not valid:
                raise UsageError(f"{path}: --dim {name}: the model has no symbolic dims")
            raise UnknownNameError("dim", name, valid)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{path}: --dim {name}={value}: a dim must be a positive integer")


def _bind_inputs(graph: Any, dims: Mapping[str, int]) -> None:
    """Replace bound dim_params by dim_values in the graph inputs, in place."""
    for value in graph.input:
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in dims:
                d.dim_value = dims[d.dim_param]


def _shape(tensor_type: Any, dims: Mapping[str, int]) -> Shape | None:
    """A tensor type's shape, with bound names substituted; None when the rank is unknown.

    Called for every value of the graph: a set ``dim_value`` (the common case) is read
    with one field access, the rest with ``HasField``.
    """
    if not tensor_type.HasField("shape"):
        return None
    out: list[Dim] = []
    for d in tensor_type.shape.dim:
        value = d.dim_value
        if value:
            out.append(value)
        elif d.HasField("dim_value"):
            out.append(0)
        elif d.HasField("dim_param"):
            out.append(dims.get(d.dim_param, d.dim_param))
        else:
            out.append(None)
    return tuple(out)


def _attribute(attr: Any) -> AttrValue:
    """Attribute value as plain Python; tensor and graph attributes become their kind."""
    kind = attr.type
    if kind == onnx.AttributeProto.INT:
        return int(attr.i)
    if kind == onnx.AttributeProto.FLOAT:
        return float(attr.f)
    if kind == onnx.AttributeProto.STRING:
        return bytes(attr.s).decode("utf-8", "replace")
    if kind == onnx.AttributeProto.INTS:
        return tuple(int(v) for v in attr.ints)
    if kind == onnx.AttributeProto.FLOATS:
        return tuple(float(v) for v in attr.floats)
    if kind == onnx.AttributeProto.STRINGS:
        return tuple(bytes(v).decode("utf-8", "replace") for v in attr.strings)
    return str(onnx.AttributeProto.AttributeType.Name(kind))


def _small_ints(tensor: Any) -> tuple[int, ...] | None:
    """Value of a small inline integer tensor; None for anything else (never external)."""
    size = 1
    for d in tensor.dims:
        size *= int(d)
    if (
        tensor.data_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        or size > MAX_CONSTANT_ELEMENTS
        or tensor.data_location == onnx.TensorProto.EXTERNAL
    ):
        return None
    return tuple(int(v) for v in numpy_helper.to_array(tensor).reshape(-1))


# The empty mapping of every node without attributes, metadata or bodies (most of them):
# nodes are never changed in place, and 600k empty dicts retained cost a tenth of a second
# at 200k nodes to make, and as long again to free.
_NONE: dict[str, Any] = {}


# what one pass over a graph's nodes finds: the nodes, the producer and the consumers
# of each name, the small integer constants, the nodes with bodies, and the names read
# before the node that makes them
_Nodes = tuple[list[Node], dict[str, str], dict[str, list[str]], dict[str, tuple[int, ...]],
               list[int], set[str]]


def _read_nodes(g: Any) -> _Nodes:
    """One pass over ``g``'s nodes: builds them, their producers and consumers, and notes
    whether the file lists them in topological order (exporters do): only a file that
    does not is sorted, and checked for cycles.
    """
    nodes: list[Node] = []
    producer: dict[str, str] = {}
    consumers: dict[str, list[str]] = {}
    constants: dict[str, tuple[int, ...]] = {}
    with_bodies: list[int] = []
    read_before_made: set[str] = set()
    for i, n in enumerate(g.node):
        op_type = n.op_type
        name = n.name or f"{op_type}_{i}"
        inputs, outputs = tuple(n.input[:]), tuple(n.output[:])  # a slice is the fastest copy
        attributes: dict[str, AttrValue] = _NONE
        if n.attribute:  # most nodes have none: the test is cheaper than an empty loop
            attributes = {}
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    with_bodies.append(i)
                attributes[a.name] = _attribute(a)
                if (op_type == "Constant" and a.name == "value" and outputs
                        and (value := _small_ints(a.t)) is not None):
                    constants[outputs[0]] = value
        # omitted names ("") are indexed too, and dropped after the loop: one test fewer
        # per name of 200k nodes
        for x in inputs:
            readers = consumers.get(x)
            if readers is None:  # the first read: later ones cannot precede the producer
                consumers[x] = [name]
                if x not in producer:
                    read_before_made.add(x)
            else:
                readers.append(name)
        for out in outputs:
            producer[out] = name
        metadata = {p.key: p.value for p in n.metadata_props} if n.metadata_props else _NONE
        nodes.append(Node(name, op_type, n.domain, attributes, inputs, outputs, _NONE, metadata))
    producer.pop("", None)
    consumers.pop("", None)
    read_before_made.discard("")
    return nodes, producer, consumers, constants, with_bodies, read_before_made


def _graph(
    g: Any,
    dims: Mapping[str, int],
    path: Path,
    outer: Mapping[str, TensorInfo],
    outer_constants: Mapping[str, tuple[int, ...]],
    parsed: _Nodes | None = None,
    kernels: tuple[Node, ...] | None = None,
) -> ModelGraph:
    """Convert one GraphProto; ``outer`` holds the enclosing scopes' tensors.

    A control-flow body (If branches, Loop and Scan bodies) may read any value of the
    scopes around it by name: those resolve through ``outer`` (a :class:`Scope`, never a
    copy), and its own values shadow them. Bodies become ``Node.subgraphs`` with shapes
    propagated, ready for the op rules.

    ``parsed`` is :func:`_read_nodes` of ``g``'s nodes when the caller has it already
    (read from the graph before inference, which changes no node), and ``kernels`` their
    fusion (:func:`_fused_ahead`).
    """
    nodes, producer, consumers, constants, with_bodies, read_before_made = (
        parsed if parsed is not None else _read_nodes(g)
    )
    tensors: dict[str, TensorInfo] = {}

    def add(name: str, shape: Shape | None, dtype: str, bits: int, *, is_param: bool) -> None:
        readers = consumers.get(name)
        tensors[name] = TensorInfo(name, shape, dtype, bits, producer.get(name),
                                   tuple(readers) if readers else (), is_param)

    # A graph of 200k values has a handful of distinct types: each is decoded once, keyed
    # by its serialized bytes (cheaper than reading the dims field by field), and the
    # tensors of one type share one shape tuple. The loop is ``add`` inlined: it runs once
    # per value of the graph.
    types: dict[bytes, tuple[Shape | None, str, int]] = {}
    made_by, read_by = producer.get, consumers.get
    for value in (*g.input, *g.value_info, *g.output):
        value_type = value.type
        key = value_type.SerializeToString()
        decoded = types.get(key)
        if decoded is None:
            tensor_type = value_type.tensor_type
            decoded = types[key] = (_shape(tensor_type, dims),
                                    *DTYPES.get(tensor_type.elem_type, UNKNOWN_DTYPE))
        name = value.name
        readers = read_by(name)
        tensors[name] = TensorInfo(name, *decoded, made_by(name),
                                   tuple(readers) if readers else ())
    for init in g.initializer:
        add(init.name, tuple(int(d) for d in init.dims), *DTYPES.get(init.data_type, UNKNOWN_DTYPE),
            is_param=True)
        if (small := _small_ints(init)) is not None:
            constants[init.name] = small
    # after inference every name is declared: one containment test in C says so
    if not (producer.keys() <= tensors.keys() and consumers.keys() <= tensors.keys()):
        for name in chain(producer, consumers):
            if name not in tensors and name not in outer:
                add(name, None, *UNKNOWN_DTYPE, is_param=False)
    scope: Mapping[str, TensorInfo] = Scope(tensors, outer) if outer else tensors
    known: Mapping[str, tuple[int, ...]] = (
        Scope(constants, outer_constants) if outer_constants else constants
    )
    for i in with_bodies:
        bodies = {
            a.name: propagate_shapes(_graph(a.g, dims, path, scope, known))
            for a in g.node[i].attribute
            if a.type == onnx.AttributeProto.GRAPH
        }
        nodes[i] = replace(nodes[i], subgraphs=bodies)
    ordered = tuple(nodes)
    if any(name in producer for name in read_before_made):
        ordered = topological_order(ordered)
        _check_acyclic(ordered, path)
    initializers = {init.name for init in g.initializer}
    return ModelGraph(
        name=g.name or path.stem,
        nodes=ordered,
        tensors=scope,
        inputs=tuple(v.name for v in g.input if v.name not in initializers),
        outputs=tuple(v.name for v in g.output),
        constants=known,
        source=str(path),
        kernels=kernels,
    )
