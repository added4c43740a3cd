"""Softmax and log-softmax over the rows of a matrix, with C code.

PyTensor 3's ``Softmax`` and ``LogSoftmax`` are graphs wrapped in an op (``SymbolicOp``) that
the C backend runs from Python. symnn's compile mode replaces the ones over the last axis of a
float32/float64 matrix by these ops (:mod:`symnn.ops.rewrites`), which share the vectorised
exponential of :mod:`symnn.ops.softmax_xent`; the gradients are the same expressions as
PyTensor's.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply

from ..errors import SymnnTypeError
from .softmax_xent import _SoftmaxCOp

__all__ = ["SoftmaxRows", "LogSoftmaxRows", "softmax_rows", "log_softmax_rows"]


def _float_matrix(z):
    z = pt.as_tensor_variable(z)
    if z.type.ndim != 2 or z.type.dtype not in ("float32", "float64"):
        raise SymnnTypeError(f"expected a float32 or float64 matrix; got {z.type}.")
    return z


class _RowsOp(_SoftmaxCOp):
    """One output of ``z``'s shape and dtype, C-contiguous; the row softmax helper filled."""

    def _c_finish(self, node, z: str) -> str:
        """C finishing row ``i`` (``o``: its exp(z - max), ``zr``: its input, ``m``, ``s``)."""
        raise NotImplementedError

    def make_node(self, z):
        z = _float_matrix(z)
        return Apply(self, [z], [z.type()])

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[0]]

    def c_code_cache_version(self):
        return (1, *super().c_code_cache_version())

    def c_code(self, node, name, inames, onames, sub):
        (z,) = inames
        (out,) = onames
        fail = sub["fail"]
        dtype = node.inputs[0].type.dtype
        typenum = node.outputs[0].type.dtype_specs()[2]
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({z})[0], k = PyArray_DIMS({z})[1];
        if (!{out} || PyArray_DIMS({out})[0] != n || PyArray_DIMS({out})[1] != k
                || !PyArray_IS_C_CONTIGUOUS({out})) {{
            Py_XDECREF({out});
            {out} = (PyArrayObject*)PyArray_EMPTY(2, PyArray_DIMS({z}), {typenum}, 0);
            if (!{out}) {fail}
        }}
        dtype_{z}* m = (dtype_{z}*)malloc((2 * n + 1) * sizeof(dtype_{z}));
        if (!m) {{ PyErr_NoMemory(); {fail} }}
        dtype_{z}* s = m + n;
        dtype_{out}* e = (dtype_{out}*)PyArray_DATA({out});
        symnn_softmax_rows_{dtype}(PyArray_BYTES({z}), PyArray_STRIDES({z})[0],
                                   PyArray_STRIDES({z})[1], n, k, e, m, s);
        for (npy_intp i = 0; i < n; ++i) {{
            dtype_{out}* o = e + i * k;
            const char* zr = PyArray_BYTES({z}) + i * PyArray_STRIDES({z})[0];
            {self._c_finish(node, z)}
        }}
        free(m);
        }}
        """


class SoftmaxRows(_RowsOp):
    """``exp(z - max) / sum(exp(z - max))`` over each row of a matrix."""

    __props__ = ()

    def _c_finish(self, node, z: str) -> str:
        return f"""
            const dtype_{z} inv = 1 / s[i];
            for (npy_intp j = 0; j < k; ++j) o[j] *= inv;"""

    def perform(self, node, inputs, output_storage):
        (z,) = inputs
        e = np.exp(z - z.max(axis=1, keepdims=True))
        output_storage[0][0] = (e / e.sum(axis=1, keepdims=True)).astype(z.dtype)

    def pullback(self, inputs, outputs, cotangents):
        (sm,) = outputs
        d = cotangents[0] * sm
        return [d - sm * pt.sum(d, axis=1, keepdims=True)]


class LogSoftmaxRows(_RowsOp):
    """``z - max - log(sum(exp(z - max)))`` over each row of a matrix."""

    __props__ = ()

    def _c_finish(self, node, z: str) -> str:
        log = "logf" if node.inputs[0].type.dtype == "float32" else "log"
        return f"""
            const dtype_{z} shift = m[i] + {log}(s[i]);
            for (npy_intp j = 0; j < k; ++j)
                o[j] = *(const dtype_{z}*)(zr + j * PyArray_STRIDES({z})[1]) - shift;"""

    def perform(self, node, inputs, output_storage):
        (z,) = inputs
        s = z - z.max(axis=1, keepdims=True)
        output_storage[0][0] = (s - np.log(np.exp(s).sum(axis=1, keepdims=True))).astype(z.dtype)

    def pullback(self, inputs, outputs, cotangents):
        (gz,) = cotangents
        return [gz - pt.sum(gz, axis=1, keepdims=True) * pt.exp(outputs[0])]


def softmax_rows(z):
    """Softmax over each row of a float matrix.

    >>> import numpy as np, pytensor.tensor as pt
    >>> z = pt.matrix("z", dtype="float64")
    >>> softmax_rows(z).eval({z: np.array([[0.0, 0.0], [1000.0, 0.0]])})
    array([[0.5, 0.5],
           [1. , 0. ]])
    """
    return SoftmaxRows()(z)


def log_softmax_rows(z):
    """Log-softmax over each row of a float matrix.

    >>> import numpy as np, pytensor.tensor as pt
    >>> z = pt.matrix("z", dtype="float64")
    >>> log_softmax_rows(z).eval({z: np.array([[0.0, 0.0], [1000.0, 0.0]])})
    array([[-6.93147181e-01, -6.93147181e-01],
           [ 0.00000000e+00, -1.00000000e+03]])
    """
    return LogSoftmaxRows()(z)
