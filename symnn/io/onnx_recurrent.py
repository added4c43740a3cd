"""ONNX's recurrent ops (LSTM, GRU, RNN) read into symnn's recurrent layers: either GRU
variant, the outputs Y, Y_h and Y_c in any combination (Y_c: an ``LSTM(with_cell=True)``),
batch-first or time-major (behind a view of batch-first sequences, see
:mod:`symnn.io.onnx_reader`); the inputs symnn takes as masks (sequence lengths, initial
states) only when they change nothing."""

from __future__ import annotations

import numpy as np

from ..layers import GRU, LSTM, RNN, Bidirectional, Concat, Reshape, Take
from .onnx_reader import Reader

__all__ = ["read_recurrent", "ATTRIBUTES"]

#: the attributes the reader implements, per op
ATTRIBUTES = {op: {"activations", "activation_alpha", "activation_beta", "clip", "direction",
                   "hidden_size", "layout", "input_forget", "linear_before_reset"}
              for op in ("LSTM", "GRU", "RNN")}  # fmt: skip

#: ONNX's gate order as blocks of symnn's (LSTM i, o, f, c; GRU z, r, h)
_GATES = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def read_recurrent(r: Reader, node) -> None:
    """ONNX's LSTM/GRU/RNN (batch-first, or time-major behind a ``Transpose``), either GRU
    variant (``linear_before_reset=1``: PyTorch's, ``reset_after=True``; 0, ONNX's default:
    ``reset_after=False``), initial states of zeros and sequence lengths of the full length
    only (symnn takes masks). The outputs used decide the layer: without Y it returns the
    final states only (``only_return_final``); with Y_c it is an ``LSTM(with_cell=True)``;
    Y_h and Y_c beside Y are steps of the sequences of states."""
    a, op = r.attrs(node), node.op_type
    refused = {"clip": None, "input_forget": 0, "activation_alpha": None,
               "activation_beta": None}
    for key, ok in refused.items():
        if key in a and a[key] != ok:
            raise r.error(node, f"{key}={a[key]!r} is not supported (symnn reads no "
                                "clipping, no coupled gates, default activations' "
                                "parameters).")  # fmt: skip
    if a.get("linear_before_reset", 0) not in (0, 1) or (op != "GRU" and "linear_before_reset"
                                                          in a):  # fmt: skip
        raise r.error(node, f"linear_before_reset={a['linear_before_reset']!r} is not "
                            "supported (a GRU's 0 or 1).")  # fmt: skip
    acts = [(x.decode() if isinstance(x, bytes) else x).lower() for x in a.get("activations", [])]
    default = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}.get(op)
    if default and acts and acts[: len(default)] != default:
        raise r.error(node, f"activations={a['activations']} are not supported.")
    _no_masks_or_states(r, node)
    outs = [*node.output, "", ""][:3]
    uses = [bool(o) and r.uses[o] > 0 for o in outs]
    if not any(uses):
        raise r.error(node, "none of the outputs Y, Y_h, Y_c is used.")
    final = not uses[0]
    layers = [_recurrent_layer(r, node, d, final, acts, uses[2]) for d in range(
        2 if a.get("direction") == "bidirectional" else 1)]  # fmt: skip
    layer = Bidirectional(layers[0]) if len(layers) == 2 else layers[0]
    r.torch_names(layer, node, {1: "?", 2: "?", 3: "?"})  # ONNX's gate layout, not PyTorch's
    if len(layers) == 2:
        for mine, given in zip(layer.backward.get_params(), layers[1].get_params()):
            mine.set_value(given.get_value())
    time_major = a.get("layout", 0) == 0
    if time_major and r.perms.get(node.input[0]) != (1, 0, 2):
        raise r.error(node, "layout=0 takes (time, batch, features): symnn reads it when X is "
                            "a Transpose(perm=[1, 0, 2]) of batch-first sequences, or the "
                            "file's time-major input with from_onnx(batch_axis=1).")  # fmt: skip
    name = outs[0 if uses[0] else 1] or f"{outs[2]}/h"  # Y, else Y_h
    var = r.call(node, layer, out=name + "/flat", view=True)
    d, h = len(layers), int(a["hidden_size"])
    shape = (d, h) if final else (r.shape(node, view=True)[0], d, h)
    cells = outs[2] if final else f"{outs[2]}/steps"  # c: final, or every step's
    _states(r, node, var.name, shape, {name: 0, cells: 1} if uses[2] else {name: None})
    if not final:  # Y_h, Y_c: a step of the sequences
        for source, out, used in ((name, outs[1], uses[1]), (cells, outs[2], uses[2])):
            if used:
                _final_states(r, node, source, out, shape[0], a.get("direction", "forward"))
    if time_major:  # Y is (time, directions, batch, units), Y_h and Y_c (directions, ...)
        for o, used in zip(outs, uses):
            if used:
                r.perms[o] = (1, 2, 0, 3) if o == outs[0] else (1, 0, 2)


def _no_masks_or_states(r: Reader, node) -> None:
    """Refuse initial states other than zeros, and sequence lengths other than constants
    that are every sequence's full length (symnn takes masks)."""
    if r.attrs(node).get("layout", 0) == 0 and r.perms.get(node.input[0]) != (1, 0, 2):
        return  # not read as time-major: refused for that below
    steps = r.shape(node, view=True)[0]
    for i, what in ((4, "sequence_lens"), (5, "initial_h"), (6, "initial_c")):
        if len(node.input) <= i or not node.input[i]:
            continue
        if node.input[i] in r.vars:
            raise r.error(node, f"the {what} input is not supported (symnn takes masks).")
        value = r.const(node, node.input[i])
        if np.any(value != steps) if i == 4 else np.any(value):
            kept = f"every one {steps}, the sequences' length" if i == 4 else "zeros"
            raise r.error(node, f"the {what} input is not supported (symnn takes masks; a "
                                f"constant {what} of {kept} is read).")  # fmt: skip


def _states(r: Reader, node, flat: str, shape: tuple, parts: dict) -> None:
    """The layer's output ``flat`` (h, or h and c side by side per direction) as tensors
    of ``shape`` (``(time, directions, units)`` or ``(directions, units)``): ``parts`` maps
    each name to its half (0: h, 1: c; None: all)."""
    if list(parts.values()) == [None]:
        r.call(node, Reshape(shape), [flat], out=next(iter(parts)))
        return
    both = r.call(node, Reshape((*shape[:-1], 2, shape[-1])), [flat], out=flat + "/hc")
    for name, k in parts.items():
        r.call(node, Take(k, -2), [both.name], out=name)


def _final_states(r: Reader, node, y: str, out: str, steps: int, direction: str):
    """Y_h (or Y_c) from the states of every step ``(time, directions, units)`` per sample:
    each direction's state after its last step (a forward pass: the last step; a reverse
    one: the first)."""
    if direction != "bidirectional":
        return r.call(node, Take(0 if direction == "reverse" else steps - 1, 1), [y], out=out,
                      view=True)  # fmt: skip
    ends = []
    for d, step in ((0, steps - 1), (1, 0)):  # (directions, units) at that step, then d
        at = r.call(node, Take(step, 1), [y], out=f"{out}/step{step}", view=True)
        ends.append(r.call(node, Take([d], 1), [at.name], out=f"{out}/{d}", view=True).name)
    return r.call(node, Concat(1), ends, out=out, view=True)


def _recurrent_layer(r: Reader, node, d: int, final: bool, acts: list[str], cell: bool):
    op, a = node.op_type, r.attrs(node)
    order = np.argsort(_GATES[op])  # ONNX's blocks back in symnn's order
    h = int(a["hidden_size"])

    def ours(value, axis=0):
        blocks = np.split(np.asarray(value, np.float64), len(order), axis=axis)
        return np.concatenate([blocks[i] for i in order], axis=axis)

    W, R = r.const(node, node.input[1])[d], r.const(node, node.input[2])[d]
    B = r.optional_const(node, 3)
    B = np.zeros(2 * len(order) * h) if B is None else np.asarray(B)[d]
    kw = dict(W_in=ours(W).T, W_hid=ours(R).T, b=ours(B[: len(order) * h]), dtype=r.dtype,
              only_return_final=final, backwards=(d == 1 or a.get("direction") == "reverse"),
              name=(node.name or op) + ("_reverse" if d == 1 else ""))  # fmt: skip
    if op == "RNN":
        layer = RNN(W.shape[1], h, acts[d] if acts else "tanh", **kw)
    elif op == "GRU":
        layer = GRU(W.shape[1], h, reset_after=a.get("linear_before_reset", 0) == 1, **kw)
    else:
        P = r.optional_const(node, 7) if len(node.input) > 7 and node.input[7] else None
        layer = LSTM(W.shape[1], h, peepholes=P is not None, with_cell=cell, **kw)
        if P is not None:
            layer.W_cell.set_value(np.asarray(P[d], np.float64).reshape(3, h)[[0, 2, 1]]
                                   .astype(r.dtype))  # fmt: skip
    layer.b_hid.set_value(ours(B[len(order) * h :]).astype(r.dtype))
    return layer
