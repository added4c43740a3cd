"""Fused softmax cross-entropy with integer labels: one op forward, one backward.

``-log_softmax(z)[i, y_i]`` written with elementwise operations compiles to a max, a
subtraction, an ``exp``, a sum, a ``log`` and a pick, each a pass over the logits, and as many
again in the gradient; on a 784-100-10 network at batch 1000 these small passes took ~10 % of
a training step. Theano had a fused op for this (``crossentropy_softmax_1hot``); PyTensor
does not. Here the forward is one op computing each row's loss, and its gradient
``g_i * (softmax(z)_ij - [j == y_i])`` is a second op; both in a few vectorised passes.

Both ops carry C code (symnn's default backend), a numpy ``perform`` (Python modes) and, when
numba is available, a numba implementation (``SYMNN_MODE=NUMBA``). A label outside
``[0, n_classes)`` raises ``ValueError`` naming the label and the row.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from ..errors import SymnnTypeError, SymnnValueError
from .dispatch import register_numba

__all__ = ["SoftmaxCrossEntropy", "SoftmaxCrossEntropyGrad", "softmax_cross_entropy"]


def _check_inputs(logits, labels):
    logits = pt.as_tensor_variable(logits)
    labels = pt.as_tensor_variable(labels)
    if logits.type.ndim != 2 or not logits.type.dtype.startswith("float"):
        raise SymnnTypeError(
            f"logits must be a float matrix (n_examples, n_classes); got {logits.type}."
        )
    if labels.type.ndim != 1 or not labels.type.dtype.startswith(("int", "uint")):
        raise SymnnTypeError(f"labels must be an integer vector; got {labels.type}.")
    return logits, labels


def _check_labels_numpy(labels: np.ndarray, n_rows: int, n_classes: int) -> None:
    if len(labels) != n_rows:
        raise SymnnValueError(
            f"softmax_cross_entropy got {len(labels)} labels for {n_rows} rows of logits."
        )
    if n_classes == 0:
        raise SymnnValueError("softmax_cross_entropy got logits with 0 classes.")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        i = int(bad[0])
        raise SymnnValueError(
            f"softmax_cross_entropy: label {int(labels[i])} of row {i} is outside [0, {n_classes})."
        )


# C helpers shared by both ops. ``symnn_softmax_rows_<dtype>`` fills a contiguous n x k
# buffer with exp(z - row max), and the row maxima and row sums, in passes over the whole
# block: with 10 classes a loop per row runs 10 iterations and its set-up dominates, while one
# loop over all n * k values vectorises. ``symnn_expf`` is Cephes' expf (range reduction by
# ln 2, degree-5 minimax polynomial; relative error below 1e-7 on [-87, 0], tested) written
# with arithmetic and bit operations only, so that the loop vectorises (glibc's expf is a
# scalar call; timings in docs/performance.md). Arguments below -87.3 give 2**-126 (1.2e-38)
# instead of a denormal or 0; NaN stays NaN. The rounding trick needs IEEE arithmetic, so
# the ops refuse -ffast-math.
_C_SUPPORT = r"""
#ifndef SYMNN_SOFTMAX_ROWS_DEFINED
#define SYMNN_SOFTMAX_ROWS_DEFINED
static inline __attribute__((always_inline)) float symnn_expf(float x) {
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447504f ? -87.3365447504f : x;
    /* round to nearest with 1.5 * 2**23 (|x * log2(e)| < 2**22 here) */
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}
#define SYMNN_SOFTMAX_ROWS(NAME, T, EXP)                                                   \
static void NAME(const char* z, npy_intp s0, npy_intp s1, npy_intp n, npy_intp k,         \
                 T* __restrict__ e, T* __restrict__ m, T* __restrict__ sum) {             \
    for (npy_intp i = 0; i < n; ++i) {                                                    \
        const char* row = z + i * s0;                                                     \
        T* er = e + i * k;                                                                \
        T mx = *(const T*)row;                                                            \
        for (npy_intp j = 0; j < k; ++j) {                                                \
            const T v = *(const T*)(row + j * s1);                                        \
            er[j] = v;                                                                    \
            mx = v > mx ? v : mx;                                                         \
        }                                                                                 \
        for (npy_intp j = 0; j < k; ++j) er[j] -= mx;                                     \
        m[i] = mx;                                                                        \
    }                                                                                     \
    const npy_intp nk = n * k;                                                            \
    for (npy_intp t = 0; t < nk; ++t) e[t] = EXP(e[t]);                                   \
    for (npy_intp i = 0; i < n; ++i) {                                                    \
        const T* er = e + i * k;                                                          \
        T s_ = 0;                                                                         \
        for (npy_intp j = 0; j < k; ++j) s_ += er[j];                                     \
        sum[i] = s_;                                                                      \
    }                                                                                     \
}
SYMNN_SOFTMAX_ROWS(symnn_softmax_rows_float32, float, symnn_expf)
SYMNN_SOFTMAX_ROWS(symnn_softmax_rows_float64, double, exp)
#endif
"""


class _SoftmaxCOp(COp):
    """What the two ops share: C headers and helpers, the label check, no fast-math."""

    __props__ = ()

    def c_headers(self, **kwargs):
        return ["<math.h>", "<stdint.h>", "<stdlib.h>"]

    def c_support_code(self, **kwargs):
        return _C_SUPPORT

    def c_no_compile_args(self, **kwargs):
        return ["-ffast-math", "-funsafe-math-optimizations", "-fassociative-math"]

    def c_code_cache_version(self):
        return (3,)

    @staticmethod
    def _c_labels(y: str, fail: str) -> str:
        """C checking the label count and every label (``n``, ``k`` defined) up front."""
        return f"""
        if (PyArray_DIMS({y})[0] != n) {{
            PyErr_Format(PyExc_ValueError,
                "softmax_cross_entropy got %lld labels for %lld rows of logits.",
                (long long)PyArray_DIMS({y})[0], (long long)n);
            {fail}
        }}
        if (k == 0 && n > 0) {{
            PyErr_SetString(PyExc_ValueError, "softmax_cross_entropy got logits with 0 classes.");
            {fail}
        }}
        for (npy_intp i = 0; i < n; ++i) {{
            const long long label = (long long)*(dtype_{y}*)PyArray_GETPTR1({y}, i);
            if (label < 0 || label >= (long long)k) {{
                PyErr_Format(PyExc_ValueError,
                    "softmax_cross_entropy: label %lld of row %lld is outside [0, %lld).",
                    label, (long long)i, (long long)k);
                {fail}
            }}
        }}
        """


class SoftmaxCrossEntropy(_SoftmaxCOp):
    """Per-row ``logsumexp(z_i) - z_i[y_i]`` (the cross-entropy of ``softmax(z)``)."""

    def make_node(self, logits, labels):
        logits, labels = _check_inputs(logits, labels)
        out = pt.TensorType(logits.type.dtype, shape=(logits.type.shape[0],))()
        return Apply(self, [logits, labels], [out])

    def perform(self, node, inputs, output_storage):
        z, y = inputs
        _check_labels_numpy(y, z.shape[0], z.shape[1])
        m = z.max(axis=1, keepdims=True)
        s = np.log(np.exp(z - m).sum(axis=1))
        picked = z[np.arange(len(y)), y] - m[:, 0]
        output_storage[0][0] = np.asarray(s - picked, dtype=node.outputs[0].dtype)

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [(shapes[0][0],)]

    def connection_pattern(self, node):
        return [[True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        z, y = inputs
        (g,) = cotangents
        return [softmax_cross_entropy_grad(g, z, y), disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        z, y = inames
        (out,) = onames
        fail = sub["fail"]
        dtype = node.inputs[0].type.dtype
        log = "logf" if dtype == "float32" else "log"
        typenum = node.outputs[0].type.dtype_specs()[2]
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({z})[0], k = PyArray_DIMS({z})[1];
        {self._c_labels(y, fail)}
        if (!{out} || PyArray_DIMS({out})[0] != n) {{
            Py_XDECREF({out});
            {out} = (PyArrayObject*)PyArray_EMPTY(1, (npy_intp*)&n, {typenum}, 0);
            if (!{out}) {fail}
        }}
        dtype_{z}* e = (dtype_{z}*)malloc((n * k + 2 * n + 1) * sizeof(dtype_{z}));
        if (!e) {{ PyErr_NoMemory(); {fail} }}
        dtype_{z}* m = e + n * k;
        dtype_{z}* s = m + n;
        symnn_softmax_rows_{dtype}(PyArray_BYTES({z}), PyArray_STRIDES({z})[0],
                                   PyArray_STRIDES({z})[1], n, k, e, m, s);
        for (npy_intp i = 0; i < n; ++i) {{
            const npy_intp label = (npy_intp)*(dtype_{y}*)PyArray_GETPTR1({y}, i);
            const dtype_{z} picked = *(dtype_{z}*)PyArray_GETPTR2({z}, i, label) - m[i];
            *(dtype_{out}*)PyArray_GETPTR1({out}, i) = {log}(s[i]) - picked;
        }}
        free(e);
        }}
        """


class SoftmaxCrossEntropyGrad(_SoftmaxCOp):
    """``g_i * (softmax(z)_ij - [j == y_i])``: the gradient of :class:`SoftmaxCrossEntropy`
    with respect to the logits, for the per-row output gradient ``g`` (length n or 1)."""

    def make_node(self, g, logits, labels):
        logits, labels = _check_inputs(logits, labels)
        g = pt.as_tensor_variable(g)
        if g.type.ndim != 1:
            raise SymnnTypeError(f"the output gradient must be a vector; got {g.type}.")
        g = pt.cast(g, logits.type.dtype)
        return Apply(self, [g, logits, labels], [logits.type()])

    def perform(self, node, inputs, output_storage):
        g, z, y = inputs
        _check_labels_numpy(y, z.shape[0], z.shape[1])
        e = np.exp(z - z.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        e[np.arange(len(y)), y] -= 1
        output_storage[0][0] = np.asarray(e * g[:, None], dtype=node.outputs[0].dtype)

    def infer_shape(self, *args):  # (fgraph, node, shapes) before PyTensor 3.3
        node, shapes = args[-2:]
        return [shapes[1]]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        # second derivatives (Hessian-vector products) through the elementwise expression,
        # built on stand-ins for g and z: g usually depends on z (g = 2 * loss, say), and a
        # pullback taken on the real inputs would count that path twice
        from pytensor.gradient import pullback
        from pytensor.graph.replace import graph_replace

        g, z, y = inputs
        g_, z_ = g.type(), z.type()
        e = pt.exp(z_ - pt.max(z_, axis=1, keepdims=True))
        p = e / pt.sum(e, axis=1, keepdims=True)
        onehot = pt.eq(y[:, None], pt.arange(z_.shape[1], dtype=y.dtype)[None, :])
        expr = g_[:, None] * (p - pt.cast(onehot, z_.dtype))
        dg, dz = pullback(expr, [g_, z_], cotangents[0], return_disconnected="zero")
        dg, dz = graph_replace([dg, dz], {g_: g, z_: z}, strict=False)
        return [dg, dz, disconnected_type()]

    def c_code(self, node, name, inames, onames, sub):
        g, z, y = inames
        (out,) = onames
        fail = sub["fail"]
        dtype = node.inputs[1].type.dtype
        typenum = node.outputs[0].type.dtype_specs()[2]
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({z})[0], k = PyArray_DIMS({z})[1];
        {self._c_labels(y, fail)}
        const npy_intp gn = PyArray_DIMS({g})[0];
        if (gn != n && gn != 1) {{
            PyErr_Format(PyExc_ValueError,
                "softmax_cross_entropy gradient: %lld output gradients for %lld rows.",
                (long long)gn, (long long)n);
            {fail}
        }}
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
        const npy_intp g_stride = gn == 1 ? 0 : PyArray_STRIDES({g})[0];
        for (npy_intp i = 0; i < n; ++i) {{
            const dtype_{g} gi = *(const dtype_{g}*)(PyArray_BYTES({g}) + i * g_stride);
            const dtype_{z} scale = gi / s[i];
            dtype_{out}* o = e + i * k;
            for (npy_intp j = 0; j < k; ++j) o[j] *= scale;
            o[(npy_intp)*(dtype_{y}*)PyArray_GETPTR1({y}, i)] -= gi;
        }}
        free(m);
        }}
        """


softmax_cross_entropy_op = SoftmaxCrossEntropy()
softmax_cross_entropy_grad = SoftmaxCrossEntropyGrad()


def softmax_cross_entropy(logits, labels):
    """Per-example cross-entropy of ``softmax(logits)`` against integer ``labels``, fused.

    Equal to ``-log_softmax(logits)[arange(n), labels]``, stable for any logits, in one pass
    per row, and so is its gradient.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> z = pt.matrix("z", dtype="float64"); y = pt.ivector("y")
    >>> loss = softmax_cross_entropy(z, y)
    >>> loss.eval({z: np.array([[0.0, 0.0], [1000.0, 0.0]]), y: np.array([0, 0], "int32")})
    array([0.69314718, 0.        ])
    """
    return softmax_cross_entropy_op(logits, labels)


def _numba_forward(nb, node):
    out_dtype = np.dtype(node.outputs[0].dtype)

    @nb.numba_njit
    def forward(z, y):
        n, k = z.shape
        if len(y) != n or (k == 0 and n > 0):
            raise ValueError("softmax_cross_entropy: labels do not match the logits.")
        out = np.empty(n, dtype=out_dtype)
        for i in range(n):
            label = y[i]
            if label < 0 or label >= k:
                raise ValueError("softmax_cross_entropy: a label is outside [0, n_classes).")
            m = z[i, 0]
            for j in range(1, k):
                m = max(m, z[i, j])
            s = 0.0
            for j in range(k):
                s += np.exp(z[i, j] - m)
            out[i] = np.log(s) - (z[i, label] - m)
        return out

    return forward


def _numba_backward(nb, node):
    out_dtype = np.dtype(node.outputs[0].dtype)

    @nb.numba_njit
    def backward(g, z, y):
        n, k = z.shape
        if len(y) != n or (k == 0 and n > 0) or (len(g) != n and len(g) != 1):
            raise ValueError("softmax_cross_entropy gradient: shapes do not match.")
        out = np.empty((n, k), dtype=out_dtype)
        for i in range(n):
            label = y[i]
            if label < 0 or label >= k:
                raise ValueError("softmax_cross_entropy: a label is outside [0, n_classes).")
            gi = g[i] if len(g) == n else g[0]
            m = z[i, 0]
            for j in range(1, k):
                m = max(m, z[i, j])
            s = 0.0
            for j in range(k):
                e = np.exp(z[i, j] - m)
                out[i, j] = e
                s += e
            for j in range(k):
                out[i, j] *= gi / s
            out[i, label] -= gi
        return out

    return backward


register_numba({
    SoftmaxCrossEntropy: lambda nb, op, node: _numba_forward(nb, node),
    SoftmaxCrossEntropyGrad: lambda nb, op, node: _numba_backward(nb, node),
})  # fmt: skip
