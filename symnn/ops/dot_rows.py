"""Matrix products of one row as matrix-vector products (symnn's C mode).

PyTensor's ``Dot22`` calls ``gemm`` whatever the shapes; with one row (one image through a
dense layer, an activation-maximisation step of one input, a recurrent step of batch 1)
OpenBLAS's ``sgemm`` runs about 3x slower than its ``sgemv`` on the same data (measured:
docs/performance.md, "One-row products"). :class:`RowAwareDot22` is ``Dot22`` whose C code
calls ``gemv`` when the left matrix has one row at run time, and ``Dot22``'s own code
otherwise; :func:`row_aware_dot22_rewrite` puts it in place of every ``Dot22`` of a graph
compiled in symnn's mode, after PyTensor's BLAS rewrites (so ``Gemm`` fusion still sees
``Dot22``).

>>> import numpy as np, pytensor.tensor as pt
>>> from symnn.backend import function
>>> x, w = pt.matrix("x"), pt.matrix("w")
>>> f = function([x, w], x @ w, mode="C")
>>> any(isinstance(n.op, RowAwareDot22) for n in f.maker.fgraph.toposort())
True
>>> a, b = np.ones((1, 3), "float32"), np.arange(6, dtype="float32").reshape(3, 2)
>>> f(a, b).tolist()
[[6.0, 9.0]]
"""

from __future__ import annotations

from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.tensor.blas import Dot22

from ..backend import REWRITE_TAG as TAG

__all__ = ["RowAwareDot22", "row_aware_dot22"]

_GEMV = {"float32": ("sgemv_", "float"), "float64": ("dgemv_", "double")}

# z (1, N) = x (1, K) @ y (K, N), y with unit stride along one axis: in BLAS's column-major
# terms a C-ordered y is the N x K matrix y.T ("N"), an F-ordered y the K x N matrix y ("T").
# z is zeroed first: some BLAS read y when beta is 0 (PyTensor's must_initialize_y_gemv).
_ONE_ROW = """
int %(name)s_done = 0;
if (PyArray_DIMS(%(x)s)[0] == 1 && PyArray_DIMS(%(x)s)[1] == PyArray_DIMS(%(y)s)[0]
    && PyArray_DIMS(%(x)s)[1] > 0 && PyArray_DIMS(%(y)s)[1] > 0
    && PyArray_DIMS(%(x)s)[1] < 2147483647 && PyArray_DIMS(%(y)s)[1] < 2147483647
    && PyArray_STRIDES(%(x)s)[1] > 0 && PyArray_STRIDES(%(x)s)[1] %% sizeof(%(ctype)s) == 0)
{
    int K = (int)PyArray_DIMS(%(x)s)[1], N = (int)PyArray_DIMS(%(y)s)[1];
    npy_intp s0 = PyArray_STRIDES(%(y)s)[0], s1 = PyArray_STRIDES(%(y)s)[1];
    const npy_intp size = sizeof(%(ctype)s);
    int c_order = (s1 == size || N == 1) && s0 > 0 && s0 %% size == 0 && s0 / size >= N;
    int f_order = !c_order && (s0 == size || K == 1) && s1 > 0 && s1 %% size == 0
                  && s1 / size >= K;
    if (c_order || f_order) {
        if (!%(z)s || PyArray_NDIM(%(z)s) != 2 || PyArray_DIMS(%(z)s)[0] != 1
            || PyArray_DIMS(%(z)s)[1] != N || !PyArray_IS_C_CONTIGUOUS(%(z)s)) {
            npy_intp dims[2] = {1, N};
            Py_XDECREF(%(z)s);
            %(z)s = (PyArrayObject*)PyArray_EMPTY(2, dims, PyArray_TYPE(%(x)s), 0);
            if (!%(z)s) {
                PyErr_SetString(PyExc_MemoryError, "RowAwareDot22: cannot allocate the output");
                %(fail)s
            }
        }
        memset(PyArray_DATA(%(z)s), 0, N * size);
        {
            char trans = c_order ? 'N' : 'T';
            int rows = c_order ? N : K, cols = c_order ? K : N;
            int lda = (int)((c_order ? s0 : s1) / size);
            int incx = (int)(PyArray_STRIDES(%(x)s)[1] / size), incz = 1;
            %(ctype)s one = 1, zero = 0;
            if (lda < 1) lda = 1;
            %(gemv)s(&trans, &rows, &cols, &one, (%(ctype)s*)PyArray_DATA(%(y)s), &lda,
                     (%(ctype)s*)PyArray_DATA(%(x)s), &incx, &zero,
                     (%(ctype)s*)PyArray_DATA(%(z)s), &incz);
        }
        %(name)s_done = 1;
    }
}
"""


class RowAwareDot22(Dot22):
    """``Dot22`` that calls ``gemv`` when its left input has one row (C code; elsewhere the
    same as ``Dot22``)."""

    def c_code(self, node, name, inp, out, sub):
        base = super().c_code(node, name, inp, out, sub)
        dtype = node.inputs[0].type.dtype
        if dtype not in _GEMV:
            return base
        gemv, ctype = _GEMV[dtype]
        one_row = _ONE_ROW % dict(
            name=name, x=inp[0], y=inp[1], z=out[0], fail=sub["fail"], gemv=gemv, ctype=ctype
        )
        return f"{{\n{one_row}\nif (!{name}_done) {{\n{base}\n}}\n}}"

    def c_code_cache_version(self):
        base = super().c_code_cache_version()
        return (1, *base) if base else base


row_aware_dot22 = RowAwareDot22()


@node_rewriter([Dot22])
def row_aware_dot22_rewrite(fgraph, node):
    """``Dot22(x, y)`` -> ``RowAwareDot22(x, y)`` for float32 and float64."""
    if type(node.op) is not Dot22 or node.inputs[0].type.dtype not in _GEMV:
        return None
    return [row_aware_dot22(*node.inputs)]


# after PyTensor's BLAS rewrites and in-place passes (position 70-75), before symnn's last
optdb.register(
    "symnn_row_aware_dot22",
    WalkingGraphRewriter(row_aware_dot22_rewrite),
    TAG,
    position=98.9,
)
