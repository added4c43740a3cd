"""``LSTMCell`` and ``GRUCell``: the elementwise half of an LSTM or GRU step in one op
each, with their gradient ops.

From the gate pre-activations ``z = [i, f, g, o]`` (``(N, 4H)``, PyTorch's gate order) and the
previous cell state ``c`` (``(N, H)``): ``c' = sigmoid(f) * c + sigmoid(i) * tanh(g)`` and
``h' = sigmoid(o) * tanh(c')``. PyTensor fuses the same expression into one elementwise node,
but its C loop calls the scalar ``expf``/``tanhf`` of the C library for every cell (about
46 ns per cell here, 84 % of the forward step; docs/performance.md, "Recurrent layers"). The C
code here computes float32 sigmoids with symnn's vectorisable exponential
(:mod:`symnn.ops.softmax_xent`) and tanh with a rational approximation (the one of Eigen's
``ptanh_float``), both written with arithmetic only, so the loop over a row's cells runs in
SIMD; float64 uses the C library. NaN stays NaN, ``sigmoid(-inf) = 0``, ``tanh(+-inf) = +-1``.
The gradient op recomputes the gates from ``z`` (cheaper than keeping them). numba
(:mod:`symnn.ops.cells_numba`) and JAX (:mod:`symnn.ops.jax_ops`) run the same formulas
with their own ``exp``/``tanh``.

``GRUCell`` takes the input's and the hidden state's projections ``zi``, ``zh`` (``(N, 3H)``
each, PyTorch's gate order r, z, n) and ``h``: ``r = sigmoid(zi_r + zh_r)``, ``z =
sigmoid(zi_z + zh_z)``, ``n = tanh(zi_n + r * zh_n)``, ``h' = (1 - z) * n + z * h``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply

from ..errors import SymnnTypeError
from .softmax_xent import _C_SUPPORT as _EXP_SUPPORT
from .softmax_xent import _SoftmaxCOp

__all__ = ["LSTMCell", "LSTMCellGrad", "lstm_cell", "GRUCell", "GRUCellGrad", "gru_cell"]

_C_SUPPORT = _EXP_SUPPORT + r"""
#ifndef SYMNN_LSTM_CELL_DEFINED
#define SYMNN_LSTM_CELL_DEFINED
static inline __attribute__((always_inline)) float symnn_sigmoidf(float x) {
    const float s = 1.0f / (1.0f + symnn_expf(-x));
    return x < -88.0f ? 0.0f : s;  /* symnn_expf saturates: the true value is below 1e-38 */
}
static inline __attribute__((always_inline)) float symnn_tanhf(float x) {
    /* Eigen's ptanh_float: a 13/6 rational approximation on [-7.9, 7.9], where tanh
       rounds to +-1; x itself below 4e-4 */
    const float lim = 7.90531110763549805f;
    float y = x > lim ? lim : x;
    y = y < -lim ? -lim : y;
    const float y2 = y * y;
    float p = -2.76076847742355e-16f;
    p = p * y2 + 2.00018790482477e-13f;
    p = p * y2 + -8.60467152213735e-11f;
    p = p * y2 + 5.12229709037114e-08f;
    p = p * y2 + 1.48572235717979e-05f;
    p = p * y2 + 6.37261928875436e-04f;
    p = p * y2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * y2 + 1.18534705686654e-04f;
    q = q * y2 + 2.26843463243900e-03f;
    q = q * y2 + 4.89352518554385e-03f;
    const float r = (p * y) / q;
    return (x < 0.0004f && x > -0.0004f) ? x : r;
}
static inline double symnn_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
#endif
"""


def _float_matrices(what: str, *xs):
    xs = [pt.as_tensor_variable(x) for x in xs]
    dtypes = {x.type.dtype for x in xs}
    if any(x.type.ndim != 2 for x in xs) or len(dtypes) > 1 or not dtypes <= {"float32",
                                                                               "float64"}:
        raise SymnnTypeError(f"{what} takes float matrices of one dtype; got "
                             f"{[str(x.type) for x in xs]}.")  # fmt: skip
    return xs


def _gates_numpy(z, c):
    i, f, g, o = np.split(z, 4, axis=1)
    with np.errstate(over="ignore"):
        si, sf, so = (1 / (1 + np.exp(-v)) for v in (i, f, o))
    return si, sf, np.tanh(g), so


class _CellCOp(_SoftmaxCOp):
    """What the cell ops share with the softmax ops (headers, no fast-math) and each other:
    the support code, the contiguous inputs."""

    def c_support_code(self, **kwargs):
        return _C_SUPPORT

    def c_code_cache_version(self):
        return (1, *super().c_code_cache_version())

    @staticmethod
    def _c_setup(inames, onames, widths, fail, state=1):
        """C making contiguous copies ``<name>_c`` of the inputs and the outputs ``(n,
        widths[k] * h)``; ``n`` and ``h`` defined from the input at ``state``."""
        c = inames[state]
        lines = [f"const npy_intp n = PyArray_DIMS({c})[0], h = PyArray_DIMS({c})[1];"]
        for name in inames:
            lines.append(f"PyArrayObject* {name}_c = (PyArrayObject*)PyArray_GETCONTIGUOUS("
                         f"{name}); if (!{name}_c) {fail}")  # fmt: skip
        for out, w in zip(onames, widths):
            lines.append(f"""
            if (!({out} && PyArray_DIMS({out})[0] == n && PyArray_DIMS({out})[1] == {w} * h
                  && PyArray_IS_C_CONTIGUOUS({out}))) {{
                Py_XDECREF({out});
                npy_intp dims[2] = {{n, {w} * h}};
                {out} = (PyArrayObject*)PyArray_EMPTY(2, dims, PyArray_TYPE({c}), 0);
                if (!{out}) {fail}
            }}""")
        return "\n".join(lines)


def _shape_check(z: str, c: str, fail: str, k: int = 4, what: str = "lstm_cell") -> str:
    return f"""
    if (PyArray_DIMS({z})[0] != PyArray_DIMS({c})[0]
            || PyArray_DIMS({z})[1] != {k} * PyArray_DIMS({c})[1]) {{
        PyErr_Format(PyExc_ValueError, "{what}: gates of shape (%lld, %lld) do not fit a "
            "state of shape (%lld, %lld); expected (N, {k}H) and (N, H).",
            (long long)PyArray_DIMS({z})[0], (long long)PyArray_DIMS({z})[1],
            (long long)PyArray_DIMS({c})[0], (long long)PyArray_DIMS({c})[1]);
        {fail}
    }}"""


def _c_functions(ctype: str) -> tuple[str, str]:
    """The C sigmoid and tanh of ``ctype``."""
    if ctype == "npy_float32":
        return "symnn_sigmoidf", "symnn_tanhf"
    return "symnn_sigmoid", "tanh"


def _c_gates(ctype: str) -> str:
    """C of one cell's gates ``si, sf, tg, so`` from row ``zr`` at column ``j``."""
    sig, tanh = _c_functions(ctype)
    return f"""
            const {ctype} si = {sig}(zr[j]), sf = {sig}(zr[h + j]);
            const {ctype} tg = {tanh}(zr[2 * h + j]), so = {sig}(zr[3 * h + j]);
            const {ctype} cn = sf * cr[j] + si * tg, tc = {tanh}(cn);"""


class LSTMCell(_CellCOp):
    """``(z (N, 4H), c (N, H)) -> (h', c')`` (see the module docstring)."""

    def make_node(self, z, c):
        z, c = _float_matrices("lstm_cell", z, c)
        return Apply(self, [z, c], [c.type(), c.type()])  # c's static shape too

    def perform(self, node, inputs, output_storage):
        z, c = inputs
        si, sf, tg, so = _gates_numpy(z, c)
        cn = sf * c + si * tg
        output_storage[0][0] = (so * np.tanh(cn)).astype(c.dtype)
        output_storage[1][0] = cn.astype(c.dtype)

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[1], shapes[1]]

    def pullback(self, inputs, outputs, cotangents):
        z, c = inputs
        dh, dc = (pt.zeros_like(o) if isinstance(g.type, DisconnectedType) else g
                  for g, o in zip(cotangents, outputs))  # fmt: skip
        return list(LSTMCellGrad()(z, c, dh, dc))

    def c_code(self, node, name, inames, onames, sub):
        (z, c), (ho, co), fail = inames, onames, sub["fail"]
        ctype = node.inputs[0].type.dtype_specs()[1]
        return f"""
        {{
        {_shape_check(z, c, fail)}
        {self._c_setup(inames, onames, (1, 1), fail)}
        for (npy_intp i = 0; i < n; ++i) {{
            const {ctype}* zr = ({ctype}*)PyArray_DATA({z}_c) + i * 4 * h;
            const {ctype}* cr = ({ctype}*)PyArray_DATA({c}_c) + i * h;
            {ctype}* hr = ({ctype}*)PyArray_DATA({ho}) + i * h;
            {ctype}* cw = ({ctype}*)PyArray_DATA({co}) + i * h;
            #pragma GCC ivdep
            for (npy_intp j = 0; j < h; ++j) {{
                {_c_gates(ctype)}
                cw[j] = cn;
                hr[j] = so * tc;
            }}
        }}
        Py_DECREF({z}_c); Py_DECREF({c}_c);
        }}
        """


class LSTMCellGrad(_CellCOp):
    """``(z, c, dh', dc') -> (dz, dc)``: the gradient of :class:`LSTMCell`."""

    def make_node(self, z, c, dh, dc):
        z, c, dh, dc = _float_matrices("lstm_cell", z, c, dh, dc)
        return Apply(self, [z, c, dh, dc], [z.type(), c.type()])

    def perform(self, node, inputs, output_storage):
        z, c, dh, dcn = inputs
        si, sf, tg, so = _gates_numpy(z, c)
        tc = np.tanh(sf * c + si * tg)
        dc = dcn + dh * so * (1 - tc * tc)
        dz = np.concatenate([dc * tg * si * (1 - si), dc * c * sf * (1 - sf),
                             dc * si * (1 - tg * tg), dh * tc * so * (1 - so)], axis=1)
        output_storage[0][0] = dz.astype(z.dtype)
        output_storage[1][0] = (dc * sf).astype(c.dtype)

    def infer_shape(self, *args):
        node, shapes = args[-2:]
        return [shapes[0], shapes[1]]

    def c_code(self, node, name, inames, onames, sub):
        (z, c, dh, dcn), (dz, dc), fail = inames, onames, sub["fail"]
        ctype = node.inputs[0].type.dtype_specs()[1]
        return f"""
        {{
        {_shape_check(z, c, fail)}
        if (PyArray_NDIM({dh}) != 2 || PyArray_NDIM({dcn}) != 2
                || PyArray_DIMS({dh})[0] != PyArray_DIMS({c})[0]
                || PyArray_DIMS({dh})[1] != PyArray_DIMS({c})[1]
                || PyArray_DIMS({dcn})[0] != PyArray_DIMS({c})[0]
                || PyArray_DIMS({dcn})[1] != PyArray_DIMS({c})[1]) {{
            PyErr_SetString(PyExc_ValueError, "lstm_cell's gradient: the output gradients do "
                            "not have the cell state's shape.");
            {fail}
        }}
        {self._c_setup(inames, onames, (4, 1), fail)}
        for (npy_intp i = 0; i < n; ++i) {{
            const {ctype}* zr = ({ctype}*)PyArray_DATA({z}_c) + i * 4 * h;
            const {ctype}* cr = ({ctype}*)PyArray_DATA({c}_c) + i * h;
            const {ctype}* dhr = ({ctype}*)PyArray_DATA({dh}_c) + i * h;
            const {ctype}* dcr = ({ctype}*)PyArray_DATA({dcn}_c) + i * h;
            {ctype}* dzr = ({ctype}*)PyArray_DATA({dz}) + i * 4 * h;
            {ctype}* dcw = ({ctype}*)PyArray_DATA({dc}) + i * h;
            #pragma GCC ivdep
            for (npy_intp j = 0; j < h; ++j) {{
                {_c_gates(ctype)}
                const {ctype} d = dcr[j] + dhr[j] * so * (1 - tc * tc);
                dzr[j] = d * tg * si * (1 - si);
                dzr[h + j] = d * cr[j] * sf * (1 - sf);
                dzr[2 * h + j] = d * si * (1 - tg * tg);
                dzr[3 * h + j] = dhr[j] * tc * so * (1 - so);
                dcw[j] = d * sf;
            }}
        }}
        Py_DECREF({z}_c); Py_DECREF({c}_c); Py_DECREF({dh}_c); Py_DECREF({dcn}_c);
        }}
        """


def _gru_numpy(zi, zh, h):
    with np.errstate(over="ignore"):
        r, z = (1 / (1 + np.exp(-(zi[:, k] + zh[:, k]))) for k in _thirds(h, 2))
    n = np.tanh(zi[:, _thirds(h, 3)[2]] + r * zh[:, _thirds(h, 3)[2]])
    return r, z, n


def _thirds(h, count):
    width = h.shape[1]
    return [slice(k * width, (k + 1) * width) for k in range(count)]


def _c_gru_gates(ctype: str) -> str:
    """C of one GRU cell's ``r, z, nn`` from rows ``ir``, ``hr`` at column ``j``."""
    sig, tanh = _c_functions(ctype)
    return f"""
            const {ctype} r = {sig}(ir[j] + hr[j]), z = {sig}(ir[h + j] + hr[h + j]);
            const {ctype} nn = {tanh}(ir[2 * h + j] + r * hr[2 * h + j]);"""


class GRUCell(_CellCOp):
    """``(zi (N, 3H), zh (N, 3H), h (N, H)) -> h'`` (see the module docstring)."""

    def make_node(self, zi, zh, h):
        zi, zh, h = _float_matrices("gru_cell", zi, zh, h)
        return Apply(self, [zi, zh, h], [h.type()])

    def perform(self, node, inputs, output_storage):
        zi, zh, h = inputs
        r, z, n = _gru_numpy(zi, zh, h)
        output_storage[0][0] = ((1 - z) * n + z * h).astype(h.dtype)

    def infer_shape(self, *args):
        node, shapes = args[-2:]
        return [shapes[2]]

    def pullback(self, inputs, outputs, cotangents):
        return list(GRUCellGrad()(*inputs, cotangents[0]))

    def c_code(self, node, name, inames, onames, sub):
        (zi, zh, hs), (out,), fail = inames, onames, sub["fail"]
        ctype = node.inputs[0].type.dtype_specs()[1]
        return f"""
        {{
        {_shape_check(zi, hs, fail, 3, "gru_cell")}
        {_shape_check(zh, hs, fail, 3, "gru_cell")}
        {self._c_setup(inames, onames, (1,), fail, state=2)}
        for (npy_intp i = 0; i < n; ++i) {{
            const {ctype}* ir = ({ctype}*)PyArray_DATA({zi}_c) + i * 3 * h;
            const {ctype}* hr = ({ctype}*)PyArray_DATA({zh}_c) + i * 3 * h;
            const {ctype}* sr = ({ctype}*)PyArray_DATA({hs}_c) + i * h;
            {ctype}* o = ({ctype}*)PyArray_DATA({out}) + i * h;
            #pragma GCC ivdep
            for (npy_intp j = 0; j < h; ++j) {{
                {_c_gru_gates(ctype)}
                o[j] = (1 - z) * nn + z * sr[j];
            }}
        }}
        Py_DECREF({zi}_c); Py_DECREF({zh}_c); Py_DECREF({hs}_c);
        }}
        """


class GRUCellGrad(_CellCOp):
    """``(zi, zh, h, dh') -> (dzi, dzh, dh)``: the gradient of :class:`GRUCell`."""

    def make_node(self, zi, zh, h, dout):
        zi, zh, h, dout = _float_matrices("gru_cell", zi, zh, h, dout)
        return Apply(self, [zi, zh, h, dout], [zi.type(), zh.type(), h.type()])

    def perform(self, node, inputs, output_storage):
        zi, zh, h, d = inputs
        r, z, n = _gru_numpy(zi, zh, h)
        dnp = d * (1 - z) * (1 - n * n)
        drp = dnp * zh[:, _thirds(h, 3)[2]] * r * (1 - r)
        dzp = d * (h - n) * z * (1 - z)
        output_storage[0][0] = np.concatenate([drp, dzp, dnp], axis=1).astype(h.dtype)
        output_storage[1][0] = np.concatenate([drp, dzp, dnp * r], axis=1).astype(h.dtype)
        output_storage[2][0] = (d * z).astype(h.dtype)

    def infer_shape(self, *args):
        node, shapes = args[-2:]
        return [shapes[0], shapes[1], shapes[2]]

    def c_code(self, node, name, inames, onames, sub):
        (zi, zh, hs, d), (dzi, dzh, dhs), fail = inames, onames, sub["fail"]
        ctype = node.inputs[0].type.dtype_specs()[1]
        return f"""
        {{
        {_shape_check(zi, hs, fail, 3, "gru_cell")}
        {_shape_check(zh, hs, fail, 3, "gru_cell")}
        {_shape_check(d, hs, fail, 1, "gru_cell's gradient")}
        {self._c_setup(inames, onames, (3, 3, 1), fail, state=2)}
        for (npy_intp i = 0; i < n; ++i) {{
            const {ctype}* ir = ({ctype}*)PyArray_DATA({zi}_c) + i * 3 * h;
            const {ctype}* hr = ({ctype}*)PyArray_DATA({zh}_c) + i * 3 * h;
            const {ctype}* sr = ({ctype}*)PyArray_DATA({hs}_c) + i * h;
            const {ctype}* dr = ({ctype}*)PyArray_DATA({d}_c) + i * h;
            {ctype}* gi = ({ctype}*)PyArray_DATA({dzi}) + i * 3 * h;
            {ctype}* gh = ({ctype}*)PyArray_DATA({dzh}) + i * 3 * h;
            {ctype}* gs = ({ctype}*)PyArray_DATA({dhs}) + i * h;
            #pragma GCC ivdep
            for (npy_intp j = 0; j < h; ++j) {{
                {_c_gru_gates(ctype)}
                const {ctype} dnp = dr[j] * (1 - z) * (1 - nn * nn);
                const {ctype} drp = dnp * hr[2 * h + j] * r * (1 - r);
                const {ctype} dzp = dr[j] * (sr[j] - nn) * z * (1 - z);
                gi[j] = drp; gi[h + j] = dzp; gi[2 * h + j] = dnp;
                gh[j] = drp; gh[h + j] = dzp; gh[2 * h + j] = dnp * r;
                gs[j] = dr[j] * z;
            }}
        }}
        Py_DECREF({zi}_c); Py_DECREF({zh}_c); Py_DECREF({hs}_c); Py_DECREF({d}_c);
        }}
        """


def gru_cell(zi, zh, h):
    """``h'`` of a GRU step from the input's and the state's gate projections ``zi``, ``zh``
    (``[r, z, n]`` each) and the state ``h`` (see the module docstring).

    >>> import numpy as np, pytensor.tensor as pt
    >>> zi, zh, h = (pt.matrix(n, dtype="float64") for n in ("zi", "zh", "h"))
    >>> [float(v) for v in gru_cell(zi, zh, h).eval(
    ...     {zi: np.zeros((1, 3)), zh: np.zeros((1, 3)), h: np.ones((1, 1))}).ravel()]
    [0.5]
    """
    return GRUCell()(zi, zh, h)


def lstm_cell(z, c):
    """``(h', c')`` of an LSTM step from the gate pre-activations ``z = [i, f, g, o]`` and
    the cell state ``c`` (see the module docstring).

    >>> import numpy as np, pytensor.tensor as pt
    >>> z, c = pt.matrix("z", dtype="float64"), pt.matrix("c", dtype="float64")
    >>> h, c_new = lstm_cell(z, c)
    >>> [float(v) for v in c_new.eval({z: np.zeros((1, 4)), c: np.ones((1, 1))}).ravel()]
    [0.5]
    """
    return LSTMCell()(z, c)
