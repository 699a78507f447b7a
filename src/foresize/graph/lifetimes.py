"""How eager PyTorch shares and keeps tensors, beyond what the graph's edges say.

The liveness pass (:mod:`foresize.graph.liveness`) frees a tensor after its last reader.
Eager PyTorch, which the measured numbers come from, differs in four ways, each a
function here:

* **views** share their input's storage (:func:`view_roots`);
* **weight re-layouts** an exporter emits are never run (:func:`static_sources`);
* **Python frames** keep a module's arguments and named locals alive until it returns
  (:func:`held_by_frames`);
* **activation checkpointing** drops a block's tensors after the forward pass and
  rebuilds them for its backward (:func:`checkpointed_blocks`).
"""

from __future__ import annotations

from collections.abc import Callable

from foresize.graph.flops import is_indexed, layer_of_node
from foresize.graph.model import NAME_SCOPES, ModelGraph, Node, module_path

# ops whose output shares its input's storage in PyTorch (the exporter's source)
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose"})
# ops that cut a tensor into views: ``split``/``chunk``, basic slicing, ``select``
CUT_OPS = frozenset({"Split", "Slice", "Gather"})
RESHAPES = frozenset({"Reshape", "Flatten"})
_MAY_VIEW = VIEW_OPS | CUT_OPS  # the op types ``_is_view`` can say yes to
SHAPE_OPS = frozenset({"Shape", "Size"})
# ops that make a new tensor each run (``torch.zeros``, ``arange``, ``eye``, ``repeat``,
# ``randn``) whatever they read: never a weight re-layout, always an activation
GENERATORS = frozenset({
    "ConstantOfShape", "Range", "EyeLike", "Tile", "RandomNormal", "RandomUniform",
    "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
})  # fmt: skip


def view_roots(graph: ModelGraph, kernels: tuple[Node, ...] | None = None) -> dict[str, str]:
    """For every tensor that is a view, the tensor whose storage it shares.

    Views are the reshapes and transposes of ``VIEW_OPS`` and the cuts of ``CUT_OPS``:
    ``torch.split``/``chunk`` (``Split``), slicing with a positive step (``Slice``) and
    ``x[:, 0]`` (a ``Gather`` of one constant index) return views in PyTorch, so GPT-2's
    q, k and v keep the fused projection's output alive, and nothing else. A Reshape or
    Flatten of a non-contiguous tensor is a copy, as ``torch.reshape`` makes it, unless
    ``view`` could do it: after a transpose that moves a dim larger than 1 it cannot;
    after a cut along axis ``a`` it can while the dims before ``a`` stay as they are
    (GPT-2's ``q.view(b, t, heads, d)`` of a chunk of the last dim is a view).
    """
    roots: dict[str, str] = {}
    strided: dict[str, int | None] = {}  # the leading dims a view must keep; None: none can
    for node in kernels if kernels is not None else graph.nodes:
        if node.op_type not in _MAY_VIEW:  # the usual kernel, passed over without a call
            continue
        if not node.inputs or not node.inputs[0] or not _is_view(graph, node):
            continue
        source = node.inputs[0]
        if node.op_type in RESHAPES and source in strided:
            kept = strided[source]
            if kept is None or not _keeps_leading(graph, node, kept):
                continue
        layout = _layout(graph, node, strided)
        for name in node.outputs:
            if name:
                roots[name] = roots.get(source, source)
                if layout != -1:
                    strided[name] = layout
    return roots


def _layout(graph: ModelGraph, node: Node, strided: dict[str, int | None]) -> int | None:
    """The layout of a view's output: -1 contiguous, else as ``strided`` records it."""
    source = node.inputs[0]
    if node.op_type == "Transpose":
        return None if source in strided or _moves(graph, node) else -1
    if node.op_type in CUT_OPS:
        axis = _cut_axis(graph, node)
        if axis is None:
            return -1
        before = strided.get(source, -1)
        return None if before is None else max(before, axis)
    if node.op_type in RESHAPES or node.op_type == "Identity":
        return strided.get(source, -1)
    return None if source in strided else -1  # (un)squeezing a strided tensor: be safe


def _keeps_leading(graph: ModelGraph, node: Node, kept: int) -> bool:
    """Whether a reshape leaves the first ``kept`` dims of its input as they are."""
    source, out = graph.tensors.get(node.inputs[0]), graph.tensors.get(node.outputs[0])
    a = source.concrete_shape if source is not None else None
    b = out.concrete_shape if out is not None else None
    return a is not None and b is not None and len(b) >= kept and a[:kept] == b[:kept]


def _is_view(graph: ModelGraph, node: Node) -> bool:
    """Whether eager PyTorch's op behind ``node`` returns a view of its first input."""
    if node.op_type in VIEW_OPS or node.op_type == "Split":
        return True
    if node.op_type == "Slice":  # a negative step is torch.flip, a copy
        steps = graph.constants.get(node.inputs[4]) if len(node.inputs) > 4 else None
        return steps is None or all(step > 0 for step in steps)
    if node.op_type == "Gather":  # select: one constant index, no dim kept
        index = graph.tensors.get(node.inputs[1]) if len(node.inputs) > 1 else None
        return (
            index is not None
            and index.shape == ()
            and node.inputs[1] in graph.constants
            and not _is_param(graph, node.inputs[0])
        )
    return False


def _cut_axis(graph: ModelGraph, node: Node) -> int | None:
    """The axis a cut strides along, or None when its output is contiguous.

    A cut along axis ``a`` is contiguous when every dim before ``a`` is 1. A cut of unknown
    shape, along several axes or with a step is taken as striding past its last dim, so
    that only a reshape keeping every dim is a view of it.
    """
    tensor = graph.tensors.get(node.inputs[0])
    shape = tensor.concrete_shape if tensor is not None else None
    if shape is None:
        return len(tensor.shape or ()) if tensor is not None else 0
    if node.op_type == "Slice":
        out = graph.tensors.get(node.outputs[0])
        out_shape = out.concrete_shape if out is not None else None
        if out_shape is None or len(out_shape) != len(shape):
            return len(shape)
        cut = [axis for axis, (a, b) in enumerate(zip(shape, out_shape, strict=True)) if a != b]
        steps = graph.constants.get(node.inputs[4]) if len(node.inputs) > 4 else None
        if len(cut) > 1 or (steps is not None and any(step != 1 for step in steps)):
            return len(shape)
        axis = cut[0] if cut else 0
    else:
        attr = node.attributes.get("axis", 0)
        axis = attr if isinstance(attr, int) else 0
    axis %= max(len(shape), 1)
    return axis if any(d != 1 for d in shape[:axis]) else None


def _moves(graph: ModelGraph, node: Node) -> bool:
    """True when a Transpose reorders dims larger than 1 (its output is non-contiguous)."""
    tensor = graph.tensors.get(node.inputs[0])
    shape = tensor.concrete_shape if tensor is not None else None
    perm = node.attributes.get("perm")
    if shape is None:
        return True
    order = (
        tuple(int(p) for p in perm)
        if isinstance(perm, tuple)
        else tuple(reversed(range(len(shape))))
    )
    kept = [p for p in order if shape[p] != 1]
    return kept != sorted(kept)


def static_sources(graph: ModelGraph, kernels: tuple[Node, ...]) -> dict[str, frozenset[str]]:
    """Tensors computed from parameters and constants alone -> the parameters they read.

    An exporter re-lays weights out with graph nodes (``nn.LSTM``'s gate order becomes
    ONNX's through ``Slice`` and ``Concat`` of the weight; a tied LM head is ``Transpose``
    of the embedding). Eager PyTorch runs none of it: its kernels read the parameter, and
    an ONNX runtime folds such nodes into initializers once. So these tensors cost no
    activation memory, and the kernels that read them are the parameters' users.
    ``Shape``/``Size`` outputs are static too (shapes are bound), reading no parameter.
    What ``GENERATORS`` make is not, even from constants alone: a ``ConstantOfShape`` of
    1e15 elements is 4 PB that eager allocates, not a free re-layout.
    """
    static: dict[str, frozenset[str]] = {}
    tensor_of = graph.tensors.get
    for node in kernels:
        if node.op_type in SHAPE_OPS:
            static.update((o, frozenset()) for o in node.outputs if o)
            continue
        if node.op_type in GENERATORS:
            continue
        sources: set[str] = set()
        for name in node.inputs:
            if not name:
                continue
            tensor = tensor_of(name)  # _is_param, inlined: most nodes stop at their first input
            if tensor is not None and tensor.is_param:
                sources.add(name)
            elif name in static:
                sources |= static[name]
            else:
                break
        else:
            static.update((o, frozenset(sources)) for o in node.outputs if o)
    return static


def _is_param(graph: ModelGraph, name: str) -> bool:
    """An initializer (any dtype)."""
    tensor = graph.tensors.get(name)
    return tensor is not None and tensor.is_param


def held_by_frames(
    kernels: tuple[Node, ...], root: Callable[[str], str], sized: set[str]
) -> dict[str, int]:
    """The step until which eager Python still references each tensor, past its last use.

    Eager PyTorch frees a tensor when its last Python reference dies, and a module's
    ``forward`` frame holds references the graph does not show:

    - **arguments**: a tensor handed into a module call (read inside a module its producer
      is not in) is referenced by the caller, as a local or as a pending argument, until
      the call returns: ``y = self.mlp(self.ln2(x))`` keeps ``ln2``'s output through the
      whole MLP, ``x = block(x)`` keeps the block's input through the block;
    - **named locals**: a tensor the frame that receives it reads at two or more points
      (two statements, or two child modules) must be bound to a name or a container, and
      lives until that frame returns: a UNet's skip tensors, kept in a list for the decoder.

    A tensor read once in its frame may be a temporary, and is left to its last use. View
    nodes are not reads (``x.view(...).transpose(...)`` is one expression). Module calls
    come from :func:`module_path`; a module called twice is taken as one call spanning both.
    Graphs without scope metadata get no extension. A node the exporter's optimiser made
    without a scope (a ``Split`` it rewrote) runs in the innermost module around its
    neighbours (:func:`_infer_paths`), not in the model's own frame, which would keep its
    outputs to the end of the forward pass.
    """
    paths = _infer_paths(kernels)
    end: dict[tuple[str, ...], int] = {}
    for step, path in enumerate(paths):
        if path is not None:
            end.update((path[:depth], step) for depth in range(1, len(path) + 1))
    if not end:
        return {}
    made_in: dict[str, tuple[str, ...]] = {}
    reads: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for step, (node, path) in enumerate(zip(kernels, paths, strict=True)):
        if path is None:
            continue
        outs = [o for o in node.outputs if o]
        made_in.update((o, path) for o in outs if root(o) == o)
        if outs and all(root(o) != o for o in outs):
            continue  # a view
        for name in {root(x) for x in node.inputs if x}:
            if name in sized:
                reads.setdefault(name, []).append((step, path))
    held: dict[str, int] = {}
    for name, uses in reads.items():
        origin = made_in.get(name, ())
        frame = min(_common(origin, path) for _, path in uses)
        for _, path in uses:
            shared = _common(origin, path)
            if shared < len(path):  # an argument of the call path[:shared + 1]
                held[name] = max(held.get(name, 0), end[path[: shared + 1]])
        points = {path[frame] if len(path) > frame else step for step, path in uses}
        if frame and len(points) > 1:
            held[name] = max(held.get(name, 0), end[origin[:frame]])
    return held


def _infer_paths(kernels: tuple[Node, ...]) -> list[tuple[str, ...] | None]:
    """Each kernel's module path; an unscoped one gets its neighbours' common prefix.

    The neighbours are the scoped kernels that make its inputs and read its outputs: the
    call that encloses all of them encloses it too. A kernel with no scoped neighbour
    keeps None.
    """
    # the test first: most graphs record no scopes, and a call per kernel is most of the pass
    paths = [module_path(k) if NAME_SCOPES in k.metadata else None for k in kernels]
    if not any(paths) or None not in paths:  # a path is never empty: None, or all known
        return paths
    made: dict[str, int] = {}
    readers: dict[str, list[int]] = {}
    for step, node in enumerate(kernels):
        made.update((o, step) for o in node.outputs if o)
        for name in node.inputs:
            if name:
                readers.setdefault(name, []).append(step)
    inferred = list(paths)
    for step, node in enumerate(kernels):
        if paths[step] is not None:
            continue
        near = [made[x] for x in node.inputs if x in made]
        near += [r for o in node.outputs if o for r in readers.get(o, ())]
        known = [p for p in (paths[i] for i in near) if p is not None]
        if known:
            inferred[step] = known[0][: min(_common(known[0], p) for p in known)]
    return inferred


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Length of the common prefix of two module paths."""
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def checkpointed_blocks(
    graph: ModelGraph, kernels: tuple[Node, ...], root: Callable[[str], str]
) -> tuple[dict[int, int], dict[str, int]]:
    """Where activation checkpointing rebuilds each repeated block's tensors.

    Blocks are the exporter's indexed modules (``blocks.3``, ``flops.layer_of_node``), as
    ``torch.utils.checkpoint`` wraps each transformer block. With ``n``
    kernels, kernel ``i`` runs backward at step ``2n - 1 - i``, so a block spanning kernels
    ``first..last`` starts its backward, and its recompute, at ``2n - 1 - last``. Returns
    kernel index -> that step for kernels in a block, and the same step for each tensor
    made in a block and read only inside it (what crosses a block boundary is the
    checkpoint and stays saved, as do the graph's outputs).
    """
    n = len(kernels)
    layers = [layer_of_node(k) for k in kernels]
    spans: dict[str, tuple[int, int]] = {}
    for step, layer in enumerate(layers):
        if any(is_indexed(part) for part in layer.split("/")):
            first, _ = spans.get(layer, (step, step))
            spans[layer] = (first, step)
    restart = {i: 2 * n - 1 - spans[layer][1] for i, layer in enumerate(layers) if layer in spans}
    made: dict[str, int] = {}
    readers: dict[str, set[str]] = {}
    for step, node in enumerate(kernels):
        made.update((root(o), step) for o in node.outputs if o and root(o) == o)
        for name in node.inputs:
            if name:
                readers.setdefault(root(name), set()).add(layers[step])
    outputs = {root(o) for o in graph.outputs}
    internal = {
        name: restart[step]
        for name, step in made.items()
        if step in restart and name not in outputs and readers.get(name, set()) <= {layers[step]}
    }
    return restart, internal
