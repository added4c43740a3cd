"""Matrix products of few rows as matrix-vector products (symnn's C mode).

PyTensor's ``Dot22`` calls ``gemm`` whatever the shapes; with one row (one image through a
dense layer, an activation-maximisation step of one input, a recurrent step of batch 1)
OpenBLAS's ``sgemm`` of AlexNet's dense layers runs 3-6x slower than one ``sgemv`` on the
same data, and up to 4 rows one ``sgemv`` per row is still faster when the matrix is large
(measured: docs/performance.md, "Products of few rows"). :class:`RowAwareDot22` is
``Dot22`` whose C code does that at run time (:data:`GEMV_ROWS`, :data:`GEMV_ROWS_LARGE`),
and runs ``Dot22``'s own code otherwise; :func:`row_aware_dot22_rewrite` puts it in place
of every ``Dot22`` of a graph compiled in symnn's mode, after PyTensor's BLAS rewrites (so
``Gemm`` fusion still sees ``Dot22``).

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

__all__ = ["RowAwareDot22", "GEMV_ROWS", "GEMV_ROWS_LARGE", "LARGE"]

_GEMV = {"float32": ("sgemv_", "float"), "float64": ("dgemv_", "double")}

# z (M, N) = x (M, K) @ y (K, N) for M <= max_rows, one gemv per row, y with unit stride
# along one axis: in BLAS's column-major terms a C-ordered y is the N x K matrix y.T ("N"), an
# F-ordered y the K x N matrix y ("T"). z is zeroed first: some BLAS read y when beta is 0
# (PyTensor's must_initialize_y_gemv).
_FEW_ROWS = """
int %(name)s_done = 0;
if (PyArray_DIMS(%(x)s)[0] >= 1 && PyArray_DIMS(%(x)s)[1] == PyArray_DIMS(%(y)s)[0]
    && PyArray_DIMS(%(x)s)[0] <= (PyArray_DIMS(%(y)s)[0] * PyArray_DIMS(%(y)s)[1]
                                  >= %(large)dLL ? %(large_rows)d : %(max_rows)d)
    && PyArray_DIMS(%(x)s)[1] > 0 && PyArray_DIMS(%(y)s)[1] > 0
    && PyArray_DIMS(%(x)s)[1] < 2147483647 && PyArray_DIMS(%(y)s)[1] < 2147483647
    && PyArray_STRIDES(%(x)s)[1] > 0 && PyArray_STRIDES(%(x)s)[1] %% sizeof(%(ctype)s) == 0)
{
    int M = (int)PyArray_DIMS(%(x)s)[0];
    int K = (int)PyArray_DIMS(%(x)s)[1], N = (int)PyArray_DIMS(%(y)s)[1];
    npy_intp s0 = PyArray_STRIDES(%(y)s)[0], s1 = PyArray_STRIDES(%(y)s)[1];
    const npy_intp size = sizeof(%(ctype)s);
    int c_order = (s1 == size || N == 1) && s0 > 0 && s0 %% size == 0 && s0 / size >= N;
    int f_order = !c_order && (s0 == size || K == 1) && s1 > 0 && s1 %% size == 0
                  && s1 / size >= K;
    if (c_order || f_order) {
        if (!%(z)s || PyArray_NDIM(%(z)s) != 2 || PyArray_DIMS(%(z)s)[0] != M
            || PyArray_DIMS(%(z)s)[1] != N || !PyArray_IS_C_CONTIGUOUS(%(z)s)) {
            npy_intp dims[2] = {M, N};
            Py_XDECREF(%(z)s);
            %(z)s = (PyArrayObject*)PyArray_EMPTY(2, dims, PyArray_TYPE(%(x)s), 0);
            if (!%(z)s) {
                PyErr_SetString(PyExc_MemoryError, "RowAwareDot22: cannot allocate the output");
                %(fail)s
            }
        }
        memset(PyArray_DATA(%(z)s), 0, (size_t)M * N * size);
        {
            char trans = c_order ? 'N' : 'T';
            int rows = c_order ? N : K, cols = c_order ? K : N;
            int lda = (int)((c_order ? s0 : s1) / size);
            int incx = (int)(PyArray_STRIDES(%(x)s)[1] / size), incz = 1, r;
            %(ctype)s one = 1, zero = 0;
            if (lda < 1) lda = 1;
            for (r = 0; r < M; ++r) {
                %(gemv)s(&trans, &rows, &cols, &one, (%(ctype)s*)PyArray_DATA(%(y)s), &lda,
                         (%(ctype)s*)(PyArray_BYTES(%(x)s) + r * PyArray_STRIDES(%(x)s)[0]),
                         &incx, &zero, (%(ctype)s*)PyArray_DATA(%(z)s) + (npy_intp)r * N,
                         &incz);
            }
        }
        %(name)s_done = 1;
    }
}
"""

#: the most rows of the left matrix for which :class:`RowAwareDot22` calls one ``gemv`` per
#: row instead of ``gemm``, and the most for a right matrix of at least :data:`LARGE`
#: elements, where ``gemm``'s packing of it costs more than reading it once per row
#: (measured: docs/performance.md, "Products of few rows")
GEMV_ROWS = 1
GEMV_ROWS_LARGE = 4
LARGE = 1 << 22


class RowAwareDot22(Dot22):
    """``Dot22`` that calls ``gemv`` per row when its left input has at most ``max_rows`` rows,
    or ``large_rows`` when the right one has at least ``large`` elements (C code; elsewhere the
    same as ``Dot22``)."""

    __props__ = ("max_rows", "large_rows", "large")

    def __init__(self, max_rows: int = 1, large_rows: int = 4, large: int = 1 << 22):
        super().__init__()
        self.max_rows, self.large_rows, self.large = int(max_rows), int(large_rows), int(large)

    def c_code(self, node, name, inp, out, sub):
        base = super().c_code(node, name, inp, out, sub)
        dtype = node.inputs[0].type.dtype
        if dtype not in _GEMV:
            return base
        gemv, ctype = _GEMV[dtype]
        few_rows = _FEW_ROWS % dict(
            name=name, x=inp[0], y=inp[1], z=out[0], fail=sub["fail"], gemv=gemv, ctype=ctype,
            max_rows=self.max_rows, large_rows=self.large_rows, large=self.large,
        )  # fmt: skip
        return f"{{\n{few_rows}\nif (!{name}_done) {{\n{base}\n}}\n}}"

    def c_code_cache_version(self):
        base = super().c_code_cache_version()
        return (2, *base) if base else base


@node_rewriter([Dot22])
def row_aware_dot22_rewrite(fgraph, node):
    """``Dot22(x, y)`` -> ``RowAwareDot22(x, y)`` for float32 and float64."""
    if type(node.op) is not Dot22 or node.inputs[0].type.dtype not in _GEMV:
        return None
    return [RowAwareDot22(GEMV_ROWS, GEMV_ROWS_LARGE, LARGE)(*node.inputs)]


# after PyTensor's BLAS rewrites and in-place passes (position 70-75), before symnn's last
optdb.register(
    "symnn_row_aware_dot22",
    WalkingGraphRewriter(row_aware_dot22_rewrite),
    TAG,
    position=98.9,
)
