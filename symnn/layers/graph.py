"""Networks that are graphs: ``Input`` tensors, layers called on them, and ``Graph(inputs,
outputs)``, a layer holding the DAG of those calls (Keras' functional model, Lasagne's
``get_output`` over merge layers, pytensor-ml's ``Model``).

The DAG is read back from the PyTensor graph itself: every layer call records on the tensor
it returns which layer made it from which tensors (:func:`~symnn.layers.base.tag_call`), so
there is no second graph language. Calling a ``Graph`` re-applies the same layers, with the
same shared weights, to new tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt

from ..errors import SymnnTypeError, SymnnValueError
from ..utils import INTEGER_DTYPES, as_float_dtype, describe
from .base import Call, Layer, calls_of, layer_from_spec, layer_to_spec, register, tag_call
from .containers import Sequential

__all__ = ["Input", "Graph", "InputSpec", "last_layer"]

_INPUT_TAG = "symnn_input"


@dataclass(frozen=True)
class InputSpec:
    """What an :func:`Input` stands for: its name, per-sample shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def Input(shape: Sequence[int], name: str | None = None, dtype: Any = None):
    """A symbolic input of per-sample ``shape`` (the batch axis is free), to build a
    :class:`Graph` from.

    >>> x = Input((4,), name="x")
    >>> x.type.shape, x.name
    ((None, 4), 'x')
    """
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise SymnnTypeError(f"shape must be a sequence of ints; got {describe(shape)}.") from None
    if not shape or min(shape) < 0:
        raise SymnnValueError(
            f"shape={shape} is not a per-sample shape; expected sizes >= 0 such as (784,) "
            "or (1, 28, 28) (the batch axis is left out; a size 0 is an empty axis)."
        )
    if name is not None and not isinstance(name, str):
        raise SymnnTypeError(f"name must be a string or None; got {describe(name)}.")
    try:
        named = None if dtype is None else np.dtype(dtype).name
    except TypeError:
        named = None
    dtype = named if named in INTEGER_DTYPES else as_float_dtype(dtype)
    var = pt.tensor(name=name or "input", dtype=dtype, shape=(None, *shape))
    setattr(var.tag, _INPUT_TAG, InputSpec(name or "input", shape, dtype))
    return var


def _input_spec(var: Any) -> InputSpec | None:
    return getattr(getattr(var, "tag", None), _INPUT_TAG, None)


@dataclass(frozen=True)
class Node:
    """One layer call of a graph: the layer (its position in ``Graph.layers``), where its
    inputs come from (``("input", i)`` or ``("node", j, k)``: output ``k`` of node ``j``, k
    None for a node's only output), and whether the layer took them as a list."""

    layer: int
    inbound: tuple[tuple, ...]
    as_list: bool
    shapes: tuple  #: the per-sample static shape of each output (None sizes unknown)


class _Builder:
    """Reads the node DAG back from the tensors ``outputs`` were made from."""

    def __init__(self, inputs: list):
        self.inputs = inputs
        self.layers: list[Layer] = []
        self.nodes: list[Node] = []
        self.memo: dict[int, tuple] = {}  # id(tensor) -> its reference
        self.node_of_call: dict[int, int] = {}  # id(first output's Call) -> node
        self.keep: list = []  # the tensors met (their ids stay valid)

    def ref(self, var: Any, path: str) -> tuple:
        if id(var) in self.memo:
            return self.memo[id(var)]
        self.keep.append(var)
        for i, x in enumerate(self.inputs):
            if var is x:
                self.memo[id(var)] = ("input", i)
                return ("input", i)
        calls = calls_of(var)
        if not calls:
            raise SymnnValueError(_not_a_layer_output(var, path))
        call = calls[-1]  # the outermost call made this tensor
        ref = self._node(call, var, path)
        self.memo[id(var)] = ref
        return ref

    def _node(self, call: Call, var: Any, path: str) -> tuple:
        key = (id(call.layer), tuple(id(x) for x in call.inputs))
        if key in self.node_of_call:
            return ("node", self.node_of_call[key], call.index)
        name = type(call.layer).__name__ + call.layer._label()
        inbound = tuple(self.ref(x, f"{name} <- {path}") for x in call.inputs)
        if call.layer not in self.layers:
            self.layers.append(call.layer)
        outs = call.layer.graph_outputs_of(var) if isinstance(call.layer, Graph) else [var]
        shapes = tuple(tuple(o.type.shape[1:]) for o in outs)
        self.nodes.append(Node(self.layers.index(call.layer), inbound, call.as_list, shapes))
        self.node_of_call[key] = len(self.nodes) - 1
        return ("node", len(self.nodes) - 1, call.index)


def _not_a_layer_output(var: Any, path: str) -> str:
    where = f" (reached from {path})" if path else ""
    if _input_spec(var) is not None:
        return (
            f"the outputs depend on Input {var.name!r}{where}, which is not among the graph's "
            "inputs; add it to inputs."
        )
    if var.owner is not None:
        return (
            f"the tensor {var} is made by the PyTensor op {var.owner.op} between layers{where}; "
            "a Graph holds symnn layers only (it could not save that op): use a merge layer "
            "(Add, Concat, Multiply, Maximum) or a registered Layer of your own."
        )
    return (
        f"the tensor {var!r}{where} is not an Input nor made by a symnn layer; build the graph "
        "from symnn.layers.Input tensors."
    )


def _as_list(value: Any, what: str) -> tuple[list, bool]:
    if isinstance(value, list | tuple):
        if not value:
            raise SymnnValueError(f"{what} is empty; expected a tensor or a list of tensors.")
        return list(value), False
    return [value], True


@register
class Graph(Layer):
    """A network whose layers form a DAG: skip connections, branches, several inputs and
    outputs.

    Build it from :func:`Input` tensors and the tensors that layers called on them returned;
    ``Graph(inputs, outputs)`` takes one tensor or a list for each. It is a layer: calling it
    re-applies the same layers (same shared weights) to new tensors, and it can be a node of
    another ``Graph`` or of a :class:`Sequential`.

    >>> from symnn.layers import Add, Dense
    >>> x = Input((4,), name="x")
    >>> h = Dense(4, 4, "relu", rng=0, name="f")(x)
    >>> y = Dense(4, 2, "softmax", rng=1, name="out")(Add(name="skip")([h, x]))
    >>> net = Graph(x, y)
    >>> [la.name for la in net.layers], net.n_in, net.n_out
    (['f', 'skip', 'out'], 4, 2)
    >>> print(net.summary())
    #  node         inputs  output  params
    0  Dense 'f'    x         (4,)      20
    1  Add 'skip'   f, x      (4,)       0
    2  Dense 'out'  skip      (2,)      10
    total parameters: 30 (30 trainable)
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None):
        inputs, self._single_input = _as_list(inputs, "inputs")
        outputs, self._single_output = _as_list(outputs, "outputs")
        specs = _check_inputs(inputs)
        builder = _Builder(inputs)
        out_refs = [builder.ref(o, f"outputs[{k}]") for k, o in enumerate(outputs)]
        used = {r[1] for node in builder.nodes for r in node.inbound if r[0] == "input"}
        used |= {r[1] for r in out_refs if r[0] == "input"}
        unused = [specs[i].name for i in range(len(inputs)) if i not in used]
        if unused:
            raise SymnnValueError(
                f"input {unused[0]!r} is disconnected: no output depends on it; leave it out of "
                "inputs or use it."
            )
        floats = {s.dtype for s in specs if s.dtype.startswith("float")}
        super().__init__(name, floats.pop() if len(floats) == 1 else None)
        self.input_specs = specs
        self.nodes = builder.nodes
        self.output_refs = out_refs
        self.layers = builder.layers  # tracked sub-layers: their params are the graph's
        self._outputs = outputs
        only = specs[0] if len(specs) == 1 else None
        self.n_in = only.shape[0] if only and len(only.shape) == 1 else None
        shapes = self.output_shapes_per_sample()
        self.n_out = shapes[0][0] if len(shapes) == 1 and len(shapes[0]) == 1 else None
        self.class_names = None

    # -- structure --------------------------------------------------------------------
    def output_shapes_per_sample(self) -> list[tuple]:
        return [tuple(o.type.shape[1:]) for o in self._outputs]

    def output_names(self) -> list[str]:
        """Each output's name: the name of the layer that makes it (``"#j"`` for node ``j``
        of an unnamed layer, ``[k]`` for the ``k``-th output of a layer of several), or the
        input's name for an output that is an input."""
        return [self._source(r) for r in self.output_refs]

    def graph_outputs_of(self, var: Any) -> list:
        """The tensors of one call of this graph, given one of them (its multi-output tag)."""
        for call in reversed(calls_of(var)):
            if call.layer is self:
                return list(getattr(var.tag, "symnn_graph_outputs", [var]))
        return [var]

    def output_layer(self) -> Layer | None:
        """The layer that makes the graph's output (None for several outputs, or an output
        that is an input)."""
        if len(self.output_refs) != 1 or self.output_refs[0][0] != "node":
            return None
        return self.layers[self.nodes[self.output_refs[0][1]].layer]

    def get_layer(self, name: str) -> Layer:
        """The layer named ``name``, or a sub-layer by dotted path (``"block.conv_a"``)."""
        for layer in self.layers:  # a name with dots of its own first ("block0.add")
            if layer.name == name:
                return layer
        head, _, rest = name.partition(".")
        for layer in self.layers:
            if layer.name == head and rest:
                return layer.get_sublayer(rest)
        names = [la.name for la in self.layers if la.name]
        raise SymnnValueError(
            f"the graph has no layer named {head!r}; its named layers are "
            f"{', '.join(map(repr, names)) or 'none (give layers name=...)'}."
        )

    # -- calling ----------------------------------------------------------------------
    def __call__(self, x, *, deterministic: bool = False):
        xs = self._check_call(x)
        outs = self._replay(xs, deterministic)
        tagged = [
            tag_call(self, xs, o, as_list=not self._single_input,
                     index=None if self._single_output else k)
            for k, o in enumerate(outs)
        ]  # fmt: skip
        for o in tagged:
            o.tag.symnn_graph_outputs = tagged
        return tagged[0] if self._single_output else tagged

    def get_output_for(self, x, *, deterministic: bool = False):
        return self(x, deterministic=deterministic)

    def _check_call(self, x) -> list:
        if self._single_input:
            xs = [x]
        elif not isinstance(x, list | tuple) or len(x) != len(self.input_specs):
            raise SymnnValueError(
                f"Graph{self._label()} takes {len(self.input_specs)} inputs "
                f"({', '.join(s.name for s in self.input_specs)}) as a list; got {describe(x)}."
            )
        else:
            xs = list(x)
        checked = []
        for spec, v in zip(self.input_specs, xs):
            if isinstance(v, np.ndarray | list):
                v = pt.as_tensor_variable(np.asarray(v, dtype=spec.dtype))
            if not isinstance(v, pt.TensorVariable):
                raise SymnnTypeError(
                    f"input {spec.name!r} must be a symbolic tensor; got {describe(v)}."
                )
            want = (None, *spec.shape)
            if v.type.ndim != len(want) or any(
                a is not None and b is not None and a != b for a, b in zip(v.type.shape, want)
            ):
                raise SymnnValueError(
                    f"Graph{self._label()} input {spec.name!r} takes {want} (per sample "
                    f"{spec.shape}); got {v.type}."
                )
            if v.type.dtype != spec.dtype:
                raise SymnnTypeError(
                    f"Graph{self._label()} input {spec.name!r} has dtype {v.type.dtype}; "
                    f"expected {spec.dtype}."
                )
            checked.append(v)
        return checked

    def _replay(self, xs: list, deterministic: bool) -> list:
        steps = [(self.layers[n.layer], n.inbound, n.as_list) for n in self.nodes]
        return _replay(steps, self.output_refs, xs, deterministic)

    # -- description ------------------------------------------------------------------
    def output_size(self, input_size):
        return self.n_out

    def output_shape(self, input_shape):
        shapes = self.output_shapes_per_sample()
        if len(shapes) != 1 or any(s is None for s in shapes[0]):
            return None
        return shapes[0]

    def summary(self) -> str:
        """A table of the nodes: layer, where its inputs come from, per-sample output shape,
        parameter count (a layer called at several nodes counts once)."""
        rows, counted = [("#", "node", "inputs", "output", "params")], set()
        for j, node in enumerate(self.nodes):
            layer = self.layers[node.layer]
            count = "shared" if node.layer in counted else str(_count(layer.get_params()))
            counted.add(node.layer)
            shape = node.shapes[0] if len(node.shapes) == 1 else node.shapes
            rows.append((str(j), type(layer).__name__ + layer._label(),
                         ", ".join(self._source(r) for r in node.inbound),
                         str(shape).replace("None", "?"), count))  # fmt: skip
            if not isinstance(layer, Graph | Sequential):  # a block's sub-layers, indented
                rows.extend(("", sub, "", "", str(n)) for sub, n in layer.sublayer_rows())
        widths = [max(len(r[k]) for r in rows) for k in range(5)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
                 f"{r[3]:>{widths[3]}}  {r[4]:>{widths[4]}}" for r in rows]  # fmt: skip
        total, trainable = _count(self.get_params()), _count(self.params)
        lines.append(f"total parameters: {total} ({trainable} trainable)")
        return "\n".join(line.rstrip() for line in lines)

    def _source(self, ref: tuple) -> str:
        if ref[0] == "input":
            return self.input_specs[ref[1]].name
        layer = self.layers[self.nodes[ref[1]].layer]
        label = layer.name or f"#{ref[1]}"
        return label if ref[2] is None else f"{label}[{ref[2]}]"

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype}
                       for s in self.input_specs],  # fmt: skip
            "layers": [layer_to_spec(la) for la in self.layers],
            "nodes": [{"layer": n.layer, "inbound": [list(r) for r in n.inbound],
                       "as_list": n.as_list} for n in self.nodes],  # fmt: skip
            "outputs": [list(r) for r in self.output_refs],
            "single": [self._single_input, self._single_output],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Graph:
        """Rebuild the graph; every reference is checked before any layer is built."""
        inputs, nodes, outputs = _checked_config(config)
        layers = [layer_from_spec(spec) for spec in config["layers"]]
        xs = [Input(s["shape"], name=s["name"], dtype=s["dtype"]) for s in inputs]
        steps = [(layers[n["layer"]], n["inbound"], bool(n.get("as_list"))) for n in nodes]
        outs = _replay(steps, outputs, xs, deterministic=False)
        single_in, single_out = config.get("single", [len(xs) == 1, len(outputs) == 1])
        return cls(xs[0] if single_in else xs, outs[0] if single_out else outs,
                   name=config.get("name"))  # fmt: skip

    def __repr__(self) -> str:
        return f"Graph({len(self.input_specs)} inputs, {len(self.nodes)} nodes)"


def _replay(steps: list[tuple], output_refs: list, xs: list, deterministic: bool) -> list:
    """Apply each ``(layer, inbound references, as_list)`` in order to the inputs ``xs``;
    the tensors ``output_refs`` refer to."""
    results: list = []

    def value(ref):
        if ref[0] == "input":
            return xs[ref[1]]
        out = results[ref[1]]
        return out if len(ref) < 3 or ref[2] is None else out[ref[2]]

    for layer, inbound, as_list in steps:
        args = [value(r) for r in inbound]
        results.append(layer(args if as_list else args[0], deterministic=deterministic))
    return [value(r) for r in output_refs]


def _count(params: list) -> int:
    return sum(int(np.prod(p.get_value(borrow=True).shape)) for p in params)


def _check_inputs(inputs: list) -> list[InputSpec]:
    specs = []
    for i, x in enumerate(inputs):
        spec = _input_spec(x)
        if spec is None:
            raise SymnnTypeError(
                f"inputs[{i}] is not a symnn.layers.Input tensor; got {describe(x)}."
            )
        specs.append(spec)
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SymnnValueError(
            f"two inputs are named {twice[0]!r}; give each Input a name of its own "
            "(Input(shape, name=...))."
        )
    return specs


def _checked_config(config: dict[str, Any]) -> tuple[list, list, list]:
    """The inputs, nodes and outputs of a saved graph, every reference checked."""
    try:
        inputs, layers = list(config["inputs"]), list(config["layers"])
        nodes, outputs = list(config["nodes"]), list(config["outputs"])
    except (KeyError, TypeError) as exc:
        raise SymnnValueError(f"the graph's configuration is malformed: missing {exc}.") from None

    def check(ref, before: int, where: str) -> None:
        ok = isinstance(ref, list) and len(ref) in (2, 3) and (
            (ref[0] == "input" and isinstance(ref[1], int) and 0 <= ref[1] < len(inputs))
            or (ref[0] == "node" and isinstance(ref[1], int) and 0 <= ref[1] < before)
        )  # fmt: skip
        if not ok:
            raise SymnnValueError(
                f"the graph's {where} refers to {ref!r}, which is no input and no earlier node; "
                "the file is damaged or was not written by symnn."
            )

    for j, node in enumerate(nodes):
        if not isinstance(node, dict) or not 0 <= node.get("layer", -1) < len(layers):
            raise SymnnValueError(f"the graph's node {j} refers to no layer ({node!r}).")
        for ref in node.get("inbound", []):
            check(ref, j, f"node {j}")
    for ref in outputs:
        check(ref, len(nodes), "outputs")
    return inputs, nodes, outputs


def last_layer(network: Layer) -> Layer | None:
    """The layer that makes a network's output: a Sequential's last (looking into nested
    ones), a Graph's output node's, else the network itself."""
    if isinstance(network, Sequential):
        return last_layer(network.layers[-1])
    if isinstance(network, Graph):
        out = network.output_layer()
        return out if out is None else last_layer(out)
    return network
