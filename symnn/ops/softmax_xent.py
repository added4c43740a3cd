"""Fused softmax cross-entropy with integer labels: one C loop forward, one backward.

``-log_softmax(z)[i, y_i]`` written with elementwise operations compiles to a max, a
subtraction, an ``exp``, a sum, a ``log`` and a pick, each a pass over the logits, and as many
again in the gradient; on a 784-100-10 network at batch 1000 these small passes took ~10 % of
a training step. Theano had a fused op for this (``crossentropy_softmax_1hot``); PyTensor
does not. Here the forward is one op computing each row's loss in one loop over the row, and
its gradient ``g_i * (softmax(z)_ij - [j == y_i])`` is a second op, also one loop per row.

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


def _math(dtype: str) -> tuple[str, str]:
    """C exp/log for the dtype (float32 stays in single precision)."""
    return ("expf", "logf") if dtype == "float32" else ("exp", "log")


# The label checks shared by both C implementations; {n}, {k}, {y} and {fail} are filled in.
_C_LABEL_CHECK = """
        if (PyArray_DIMS({y})[0] != {n}) {{
            PyErr_Format(PyExc_ValueError,
                "softmax_cross_entropy got %lld labels for %lld rows of logits.",
                (long long)PyArray_DIMS({y})[0], (long long){n});
            {fail}
        }}
        if ({k} == 0 && {n} > 0) {{
            PyErr_SetString(PyExc_ValueError, "softmax_cross_entropy got logits with 0 classes.");
            {fail}
        }}
"""

_C_LABEL_AT = """
            const long long label = (long long)*(dtype_{y}*)(y_data + i * y_stride);
            if (label < 0 || label >= (long long){k}) {{
                PyErr_Format(PyExc_ValueError,
                    "softmax_cross_entropy: label %lld of row %lld is outside [0, %lld).",
                    label, (long long)i, (long long){k});
                {fail}
            }}
"""


class SoftmaxCrossEntropy(COp):
    """Per-row ``logsumexp(z_i) - z_i[y_i]`` (the cross-entropy of ``softmax(z)``)."""

    __props__ = ()

    def c_headers(self, **kwargs):
        return ["<math.h>"]

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

    def infer_shape(self, fgraph, node, shapes):
        return [(shapes[0][0],)]

    def connection_pattern(self, node):
        return [[True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        z, y = inputs
        (g,) = cotangents
        return [softmax_cross_entropy_grad(g, z, y), disconnected_type()]

    def c_code_cache_version(self):
        return (1,)

    def c_code(self, node, name, inames, onames, sub):
        z, y = inames
        (out,) = onames
        fail = sub["fail"]
        exp, log = _math(node.inputs[0].type.dtype)
        typenum = node.outputs[0].type.dtype_specs()[2]
        check = _C_LABEL_CHECK.format(n="n", k="k", y=y, fail=fail)
        label_at = _C_LABEL_AT.format(k="k", y=y, fail=fail)
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({z})[0], k = PyArray_DIMS({z})[1];
        {check}
        if (!{out} || PyArray_DIMS({out})[0] != n) {{
            Py_XDECREF({out});
            {out} = (PyArrayObject*)PyArray_EMPTY(1, (npy_intp*)&n, {typenum}, 0);
            if (!{out}) {fail}
        }}
        const char* z_data = PyArray_BYTES({z});
        const char* y_data = PyArray_BYTES({y});
        char* o_data = PyArray_BYTES({out});
        const npy_intp z_s0 = PyArray_STRIDES({z})[0], z_s1 = PyArray_STRIDES({z})[1];
        const npy_intp y_stride = PyArray_STRIDES({y})[0], o_stride = PyArray_STRIDES({out})[0];
        for (npy_intp i = 0; i < n; ++i) {{
            {label_at}
            const char* row = z_data + i * z_s0;
            dtype_{z} m = *(const dtype_{z}*)row;
            for (npy_intp j = 1; j < k; ++j) {{
                const dtype_{z} v = *(const dtype_{z}*)(row + j * z_s1);
                m = v > m ? v : m;
            }}
            dtype_{z} s = 0;
            for (npy_intp j = 0; j < k; ++j) {{
                s += {exp}(*(const dtype_{z}*)(row + j * z_s1) - m);
            }}
            const dtype_{z} picked = *(const dtype_{z}*)(row + label * z_s1) - m;
            *(dtype_{out}*)(o_data + i * o_stride) = {log}(s) - picked;
        }}
        }}
        """


class SoftmaxCrossEntropyGrad(COp):
    """``g_i * (softmax(z)_ij - [j == y_i])``: the gradient of :class:`SoftmaxCrossEntropy`
    with respect to the logits, for the per-row output gradient ``g`` (length n or 1)."""

    __props__ = ()

    def c_headers(self, **kwargs):
        return ["<math.h>"]

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

    def infer_shape(self, fgraph, node, shapes):
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

    def c_code_cache_version(self):
        return (1,)

    def c_code(self, node, name, inames, onames, sub):
        g, z, y = inames
        (out,) = onames
        fail = sub["fail"]
        exp, _ = _math(node.inputs[1].type.dtype)
        typenum = node.outputs[0].type.dtype_specs()[2]
        check = _C_LABEL_CHECK.format(n="n", k="k", y=y, fail=fail)
        label_at = _C_LABEL_AT.format(k="k", y=y, fail=fail)
        return f"""
        {{
        const npy_intp n = PyArray_DIMS({z})[0], k = PyArray_DIMS({z})[1];
        {check}
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
        const char* z_data = PyArray_BYTES({z});
        const char* y_data = PyArray_BYTES({y});
        const char* g_data = PyArray_BYTES({g});
        const npy_intp z_s0 = PyArray_STRIDES({z})[0], z_s1 = PyArray_STRIDES({z})[1];
        const npy_intp y_stride = PyArray_STRIDES({y})[0];
        const npy_intp g_stride = gn == 1 ? 0 : PyArray_STRIDES({g})[0];
        for (npy_intp i = 0; i < n; ++i) {{
            {label_at}
            const char* row = z_data + i * z_s0;
            dtype_{out}* o = (dtype_{out}*)PyArray_GETPTR2({out}, i, 0);
            dtype_{z} m = *(const dtype_{z}*)row;
            for (npy_intp j = 1; j < k; ++j) {{
                const dtype_{z} v = *(const dtype_{z}*)(row + j * z_s1);
                m = v > m ? v : m;
            }}
            dtype_{z} s = 0;
            for (npy_intp j = 0; j < k; ++j) {{
                const dtype_{z} e = {exp}(*(const dtype_{z}*)(row + j * z_s1) - m);
                o[j] = e;
                s += e;
            }}
            const dtype_{g} gi = *(const dtype_{g}*)(g_data + i * g_stride);
            const dtype_{z} scale = gi / s;
            for (npy_intp j = 0; j < k; ++j) {{
                o[j] *= scale;
            }}
            o[label] -= gi;
        }}
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


def _register_numba() -> None:
    """numba implementations, for ``SYMNN_MODE=NUMBA`` (skipped when numba is missing or its
    dispatch API differs from the one this was written against)."""
    try:
        import numba  # noqa: F401
        from pytensor.link.numba.dispatch import basic as nb
    except ImportError:  # pragma: no cover - numba is optional
        return
    register = getattr(nb, "register_funcify_default_op_cache_key", None)
    if register is None:  # pragma: no cover - another PyTensor version
        return

    @register(SoftmaxCrossEntropy)
    def _numba_forward(op, node=None, **kwargs):
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

    @register(SoftmaxCrossEntropyGrad)
    def _numba_backward(op, node=None, **kwargs):
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


_register_numba()
