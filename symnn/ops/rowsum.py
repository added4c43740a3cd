"""``RowSum``: the sums of a matrix's rows, accumulated in double precision.

PyTensor sums float32 rows with a float64 accumulator (``Sum{axis=1, acc=float64}``) in a loop
with one accumulator, each addition waiting for the previous one: 1.6 us per 784-value row
here, the largest cost of an input-optimisation step with a density prior (the squared norms
of the Mahalanobis distance) and of an L2 penalty. This op keeps the float64 accumulation but
with eight independent accumulators per row, so the additions overlap; symnn's compile mode
puts it in place of those sums (:mod:`symnn.ops.rewrites`).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from ..errors import SymnnTypeError

__all__ = ["RowSum", "row_sum"]


class RowSum(COp):
    """``x.sum(axis=1)`` of a float matrix, accumulated in float64, returned in ``x``'s
    dtype."""

    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        if x.type.ndim != 2 or x.type.dtype not in ("float32", "float64"):
            raise SymnnTypeError(f"row_sum takes a float matrix; got {x.type}.")
        return Apply(self, [x], [pt.TensorType(x.type.dtype, shape=(x.type.shape[0],))()])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        output_storage[0][0] = x.sum(axis=1, dtype=np.float64).astype(x.dtype)

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [(shapes[0][0],)]

    def pullback(self, inputs, outputs, cotangents):
        (x,) = inputs
        return [pt.alloc(cotangents[0][:, None], *x.shape)]

    def c_code_cache_version(self):
        return (1,)

    def c_code(self, node, name, inames, onames, sub):
        """The C code template of the row sums (PyTensor fills in the names)."""
        (x,), (out,), fail = inames, onames, sub["fail"]
        ctype, typenum = node.inputs[0].type.dtype_specs()[1], node.outputs[0].type.dtype_specs()[2]
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({x})[0], m = PyArray_DIMS({x})[1];
        if (!({out} && PyArray_DIMS({out})[0] == n && PyArray_IS_C_CONTIGUOUS({out}))) {{
            Py_XDECREF({out});
            npy_intp dims[1] = {{n}};
            {out} = (PyArrayObject*)PyArray_EMPTY(1, dims, {typenum}, 0);
            if (!{out}) {fail}
        }}
        const npy_intp rs = PyArray_STRIDES({x})[0], cs = PyArray_STRIDES({x})[1];
        const char* base = PyArray_BYTES({x});
        {ctype}* o = ({ctype}*)PyArray_DATA({out});
        for (npy_intp i = 0; i < n; ++i) {{
            const char* row = base + i * rs;
            double acc[8] = {{0, 0, 0, 0, 0, 0, 0, 0}};
            npy_intp j = 0;
            if (cs == (npy_intp)sizeof({ctype})) {{
                const {ctype}* r = (const {ctype}*)row;
                for (; j + 8 <= m; j += 8)
                    for (int k = 0; k < 8; ++k) acc[k] += (double)r[j + k];
                for (; j < m; ++j) acc[0] += (double)r[j];
            }} else {{
                for (; j < m; ++j) acc[j & 7] += (double)*(const {ctype}*)(row + j * cs);
            }}
            o[i] = ({ctype})(((acc[0] + acc[1]) + (acc[2] + acc[3]))
                             + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
        }}
        }}
        """


def row_sum(x):
    """The sums of the rows of a float matrix (float64 accumulation).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix("x", dtype="float32")
    >>> row_sum(x).eval({x: np.ones((2, 3), dtype="float32")})
    array([3., 3.], dtype=float32)
    """
    return RowSum()(x)
