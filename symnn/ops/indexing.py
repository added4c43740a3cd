"""Integer indexing with C code: the ``(arange(n), y)`` pick, its scatter, and row increments.

PyTensor runs ``m[arange(n), y]`` (``AdvancedSubtensor``), its gradient
(``AdvancedIncSubtensor``) and the gradient of ``x[idx]`` on a matrix
(``AdvancedIncSubtensor1``) in Python, each call a numpy round trip. symnn's compile mode
replaces them by these ops (:mod:`symnn.ops.rewrites`):

- :class:`PickRows` ``(m, y) -> m[arange(n), y]``: one value per row;
- :class:`IncPick` ``(x, g, y) -> x`` with ``g[i]`` added to (or written at) ``x[i, y[i]]``;
- :class:`IncRows` ``(x, v, idx) -> x`` with row ``v[j]`` added to (or written at) row
  ``x[idx[j]]``; repeated indices accumulate, as ``numpy.add.at`` does.

Negative indices count from the end; an index out of range raises ``IndexError``. A ``y`` or
``g`` of length 1 is broadcast over the rows, as numpy's indexing broadcasts it.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from ..errors import SymnnTypeError

__all__ = ["PickRows", "IncPick", "IncRows", "pick_rows", "inc_pick", "inc_rows"]


def _index_vector(y):
    y = pt.as_tensor_variable(y)
    if y.type.ndim != 1 or not y.type.dtype.startswith(("int", "uint")):
        raise SymnnTypeError(f"indices must be an integer vector; got {y.type}.")
    return y


def _matrix(m, name: str):
    m = pt.as_tensor_variable(m)
    if m.type.ndim != 2:
        raise SymnnTypeError(f"{name} must be a matrix; got {m.type}.")
    return m


def _rows_vector(g, dtype: str):
    """``g`` as a vector of ``dtype`` (a scalar becomes a length-1 vector)."""
    g = pt.as_tensor_variable(g)
    if g.type.ndim == 0:
        g = g[None]
    if g.type.ndim != 1:
        raise SymnnTypeError(f"the values must be a vector or a scalar; got {g.type}.")
    return pt.cast(g, dtype)


def _numpy_index(y: np.ndarray, n: int, k: int, what: str) -> np.ndarray:
    """``y`` checked (length n or 1, values in [-k, k)), as non-negative int64 of length n."""
    if len(y) not in (n, 1):
        raise ValueError(f"{what}: {len(y)} indices for {n} rows.")
    bad = (y < -k) | (y >= k)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise IndexError(f"{what}: index {int(y[i])} is out of bounds for size {k}.")
    return np.broadcast_to(np.where(y < 0, y + k, y).astype(np.int64), (n,))


_C_INDEX = """
static int symnn_index(PyArrayObject* y, npy_intp i, npy_intp k, npy_intp* out,
                       const char* what) {
    const npy_intp n_y = PyArray_DIMS(y)[0];
    const char* p = PyArray_BYTES(y) + (n_y == 1 ? 0 : i) * PyArray_STRIDES(y)[0];
    long long v;
    switch (PyArray_TYPE(y)) {
        case NPY_INT8: v = *(const npy_int8*)p; break;
        case NPY_INT16: v = *(const npy_int16*)p; break;
        case NPY_INT32: v = *(const npy_int32*)p; break;
        case NPY_INT64: v = *(const npy_int64*)p; break;
        case NPY_UINT8: v = *(const npy_uint8*)p; break;
        case NPY_UINT16: v = *(const npy_uint16*)p; break;
        case NPY_UINT32: v = *(const npy_uint32*)p; break;
        default: v = (long long)*(const npy_uint64*)p; break;
    }
    if (v < -(long long)k || v >= (long long)k) {
        PyErr_Format(PyExc_IndexError, "%s: index %lld is out of bounds for size %lld.",
                     what, v, (long long)k);
        return -1;
    }
    *out = (npy_intp)(v < 0 ? v + k : v);
    return 0;
}
static int symnn_check_count(npy_intp n_y, npy_intp n, const char* what) {
    if (n_y != n && n_y != 1) {
        PyErr_Format(PyExc_ValueError, "%s: %lld indices for %lld rows.", what,
                     (long long)n_y, (long long)n);
        return -1;
    }
    return 0;
}
"""


class _IndexCOp(COp):
    """Shared C support: reading one index of any integer type, checking counts."""

    def c_support_code(self, **kwargs):
        return "#ifndef SYMNN_INDEX_DEFINED\n#define SYMNN_INDEX_DEFINED\n" + _C_INDEX + "#endif\n"

    def c_code_cache_version(self):
        return (1,)

    @staticmethod
    def _c_copy(src: str, out: str, fail: str) -> str:
        """C making ``out`` a C-contiguous copy of ``src``."""
        return f"""
        Py_XDECREF({out});
        {out} = (PyArrayObject*)PyArray_NewCopy({src}, NPY_CORDER);
        if (!{out}) {fail}
        """


class PickRows(_IndexCOp):
    """``m[arange(n), y]`` for a matrix ``m``: the ``y[i]``-th value of each row."""

    __props__ = ()

    def make_node(self, m, y):
        m, y = _matrix(m, "m"), _index_vector(y)
        out = pt.TensorType(m.type.dtype, shape=(m.type.shape[0],))()
        return Apply(self, [m, y], [out])

    def perform(self, node, inputs, output_storage):
        m, y = inputs
        cols = _numpy_index(y, m.shape[0], m.shape[1], "pick")
        output_storage[0][0] = m[np.arange(m.shape[0]), cols].astype(m.dtype, copy=True)

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [(shapes[0][0],)]

    def connection_pattern(self, node):
        return [[True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        m, y = inputs
        return [inc_pick(pt.zeros_like(m), cotangents[0], y), disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        m, y = inames
        (out,) = onames
        fail = sub["fail"]
        typenum = node.outputs[0].type.dtype_specs()[2]
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({m})[0], k = PyArray_DIMS({m})[1];
        if (symnn_check_count(PyArray_DIMS({y})[0], n, "pick")) {fail}
        if (!{out} || PyArray_DIMS({out})[0] != n) {{
            Py_XDECREF({out});
            {out} = (PyArrayObject*)PyArray_EMPTY(1, (npy_intp*)&n, {typenum}, 0);
            if (!{out}) {fail}
        }}
        for (npy_intp i = 0; i < n; ++i) {{
            npy_intp j;
            if (symnn_index({y}, i, k, &j, "pick")) {fail}
            *(dtype_{out}*)PyArray_GETPTR1({out}, i) = *(dtype_{m}*)PyArray_GETPTR2({m}, i, j);
        }}
        }}
        """


class IncPick(_IndexCOp):
    """``x`` with ``g[i]`` added to ``x[i, y[i]]`` (written there with ``set=True``)."""

    __props__ = ("set",)

    def __init__(self, set: bool = False):
        self.set = bool(set)

    def make_node(self, x, g, y):
        x, y = _matrix(x, "x"), _index_vector(y)
        g = _rows_vector(g, x.type.dtype)
        return Apply(self, [x, g, y], [x.type()])

    def perform(self, node, inputs, output_storage):
        x, g, y = inputs
        n = x.shape[0]
        cols = _numpy_index(y, n, x.shape[1], "inc_pick")
        if len(g) not in (n, 1):
            raise ValueError(f"inc_pick: {len(g)} values for {n} rows.")
        out = x.copy()
        rows = np.arange(n)
        if self.set:
            out[rows, cols] = g
        else:
            out[rows, cols] += g
        output_storage[0][0] = out

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[0]]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        x, g, y = inputs
        (gz,) = cotangents
        dx = inc_pick(gz, pt.zeros_like(g), y, set=True) if self.set else gz
        dg = pick_rows(gz, y)
        if g.type.shape[0] == 1:  # broadcast over the rows: the gradient sums them
            dg = pt.sum(dg, keepdims=True)
        return [dx, dg, disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        x, g, y = inames
        (out,) = onames
        fail = sub["fail"]
        op = "=" if self.set else "+="
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({x})[0], k = PyArray_DIMS({x})[1];
        const npy_intp n_g = PyArray_DIMS({g})[0];
        if (symnn_check_count(PyArray_DIMS({y})[0], n, "inc_pick")) {fail}
        if (n_g != n && n_g != 1) {{
            PyErr_Format(PyExc_ValueError, "inc_pick: %lld values for %lld rows.",
                         (long long)n_g, (long long)n);
            {fail}
        }}
        {self._c_copy(x, out, fail)}
        const npy_intp g_stride = n_g == 1 ? 0 : PyArray_STRIDES({g})[0];
        for (npy_intp i = 0; i < n; ++i) {{
            npy_intp j;
            if (symnn_index({y}, i, k, &j, "inc_pick")) {fail}
            *(dtype_{out}*)PyArray_GETPTR2({out}, i, j) {op}
                *(const dtype_{g}*)(PyArray_BYTES({g}) + i * g_stride);
        }}
        }}
        """


class IncRows(_IndexCOp):
    """``x`` with row ``v[j]`` added to row ``x[idx[j]]`` (written with ``set=True``); ``v``
    has ``x``'s dimensions with ``len(idx)`` rows (or 1, broadcast)."""

    __props__ = ("set",)

    def __init__(self, set: bool = False):
        self.set = bool(set)

    def make_node(self, x, v, idx):
        x, idx = pt.as_tensor_variable(x), _index_vector(idx)
        v = pt.as_tensor_variable(v)
        if x.type.ndim < 1 or v.type.ndim != x.type.ndim or v.type.dtype != x.type.dtype:
            raise SymnnTypeError(f"inc_rows: v {v.type} does not match rows of x {x.type}.")
        return Apply(self, [x, v, idx], [x.type()])

    def perform(self, node, inputs, output_storage):
        x, v, idx = inputs
        n = x.shape[0]
        rows = _numpy_index(idx, len(idx), n, "inc_rows")
        if v.shape[1:] != x.shape[1:] or len(v) not in (len(idx), 1):
            raise ValueError(
                f"inc_rows: the values do not match the rows (values {v.shape}, x {x.shape})."
            )
        out = x.copy()
        v = np.broadcast_to(v, (len(idx), *x.shape[1:]))
        if self.set:
            out[rows] = v
        else:
            np.add.at(out, rows, v)
        output_storage[0][0] = out

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[0]]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        x, v, idx = inputs
        (gz,) = cotangents
        dx = inc_rows(gz, pt.zeros_like(v), idx, set=True) if self.set else gz
        dv = gz[idx]
        if v.type.shape[0] == 1:
            dv = pt.sum(dv, axis=0, keepdims=True)
        return [dx, dv, disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        x, v, idx = inames
        (out,) = onames
        fail = sub["fail"]
        op = "=" if self.set else "+="
        return f"""
        {{
        const int nd = PyArray_NDIM({x});
        const npy_intp n = PyArray_DIMS({x})[0], n_idx = PyArray_DIMS({idx})[0];
        const npy_intp n_v = PyArray_DIMS({v})[0];
        int ok = n_v == n_idx || n_v == 1;
        for (int d = 1; ok && d < nd; ++d) ok = PyArray_DIMS({v})[d] == PyArray_DIMS({x})[d];
        if (!ok) {{
            PyErr_SetString(PyExc_ValueError, "inc_rows: the values do not match the rows.");
            {fail}
        }}
        {self._c_copy(x, out, fail)}
        PyArrayObject* vc = (PyArrayObject*)PyArray_GETCONTIGUOUS({v});
        if (!vc) {fail}
        const npy_intp per_row = n ? PyArray_SIZE({out}) / n : 0;
        const dtype_{v}* src = (const dtype_{v}*)PyArray_DATA(vc);
        dtype_{out}* dst = (dtype_{out}*)PyArray_DATA({out});
        for (npy_intp j = 0; j < n_idx; ++j) {{
            npy_intp r;
            if (symnn_index({idx}, j, n, &r, "inc_rows")) {{ Py_DECREF(vc); {fail} }}
            const dtype_{v}* s = src + (n_v == 1 ? 0 : j) * per_row;
            dtype_{out}* d = dst + r * per_row;
            for (npy_intp e = 0; e < per_row; ++e) d[e] {op} s[e];
        }}
        Py_DECREF(vc);
        }}
        """


def pick_rows(m, y):
    """``m[arange(len(m)), y]``: one value per row of the matrix ``m``.

    >>> import numpy as np, pytensor.tensor as pt
    >>> m = pt.matrix("m", dtype="float64"); y = pt.lvector("y")
    >>> pick_rows(m, y).eval({m: np.arange(6.0).reshape(3, 2), y: np.array([1, 0, -1])})
    array([1., 2., 5.])
    """
    return PickRows()(m, y)


def inc_pick(x, g, y, *, set: bool = False):
    """``x`` with ``g[i]`` added to ``x[i, y[i]]`` (or written there, ``set=True``).

    >>> import numpy as np, pytensor.tensor as pt
    >>> g = pt.vector("g", dtype="float64"); y = pt.lvector("y")
    >>> inc_pick(pt.zeros((2, 3)), g, y).eval({g: np.array([5.0, 7.0]), y: np.array([2, 0])})
    array([[0., 0., 5.],
           [7., 0., 0.]])
    """
    return IncPick(set)(x, g, y)


def inc_rows(x, v, idx, *, set: bool = False):
    """``x`` with row ``v[j]`` added to row ``x[idx[j]]`` (repeats accumulate), or written.

    >>> import numpy as np, pytensor.tensor as pt
    >>> v = pt.matrix("v", dtype="float64"); i = pt.lvector("i")
    >>> inc_rows(pt.zeros((3, 2)), v, i).eval({v: np.ones((3, 2)), i: np.array([0, 2, 0])})
    array([[2., 2.],
           [0., 0.],
           [1., 1.]])
    """
    return IncRows(set)(x, v, idx)
