"""Recurrent layers on ``pytensor.scan``: :class:`RNN`, :class:`LSTM`, :class:`GRU` and
:class:`Bidirectional`, with Lasagne's semantics (inputs ``(batch, time, features)``,
``only_return_final``, ``backwards``, ``gradient_steps``, ``grad_clipping``, a
``(batch, time)`` mask given at call time, learnable initial states, the input projection of
all steps as one product before the loop) and PyTorch's equations, gate order and weights
(``weight_ih_l0`` ... map one to one, see :meth:`_Recurrent.torch_keys`).

A mask marks the real steps of each sequence (1) and the padding (0): at a padded step the
state is carried over unchanged, as Lasagne does; with ``only_return_final`` the state after
the last real step is returned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import grad_clip

from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..init import Constant, GlorotUniform, Orthogonal
from ..init import get as get_init
from ..ops.cells import gru_cell, lstm_cell
from ..utils import as_rng, check_positive, describe
from .base import Layer, _encode_layers, register, tag_call

__all__ = ["RNN", "LSTM", "GRU", "Bidirectional"]


class _Recurrent(Layer):
    """What the recurrent layers share (see the module docstring); ``gates`` stacked
    matrices ``W_in (n_in, gates * n_units)``, ``W_hid (n_units, gates * n_units)`` and
    biases ``b_in``, ``b_hid`` (PyTorch's two biases; their sum for RNN and LSTM). A
    subclass defines ``_cell(x_t, states, params)``: the new state(s) from the step's input
    (projected when ``precompute_input``), the previous states and :meth:`_non_sequences`."""

    gates = 1
    n_states = 1  #: the hidden state (and an LSTM's cell)

    def __init__(self, n_in: int, n_units: int, *, W_in: Any = None, W_hid: Any = None,
                 b: Any = Constant(0.0), hid_init: Any = Constant(0.0), learn_init: bool = False,
                 backwards: bool = False, only_return_final: bool = False,
                 gradient_steps: int = -1, grad_clipping: float = 0.0,
                 precompute_input: bool = True, name: str | None = None, rng: Any = None,
                 dtype: Any = None):  # fmt: skip
        super().__init__(name, dtype)
        self.n_in = check_positive(n_in, "n_in", integer=True)
        self.n_units = check_positive(n_units, "n_units", integer=True)
        self.backwards, self.only_return_final = bool(backwards), bool(only_return_final)
        self.precompute_input, self.learn_init = bool(precompute_input), bool(learn_init)
        if not isinstance(gradient_steps, int | np.integer) or gradient_steps == 0:
            raise SymnnValueError(
                f"gradient_steps={gradient_steps!r} must be -1 (all) or a number of steps > 0."
            )
        self.gradient_steps = int(gradient_steps)
        self.grad_clipping = float(check_positive(grad_clipping, "grad_clipping",
                                                  allow_zero=True))  # fmt: skip
        rng = as_rng(rng)
        g, h = self.gates, self.n_units
        self.W_in = self.add_param(_init_matrix(W_in, GlorotUniform(), (n_in, h), g, rng,
                                                self.dtype), (n_in, g * h), "W_in")  # fmt: skip
        self.W_hid = self.add_param(_init_matrix(W_hid, Orthogonal(), (h, h), g, rng,
                                                 self.dtype), (h, g * h), "W_hid")  # fmt: skip
        self.b_in = self.add_param(b, (g * h,), "b_in", rng, regularizable=False)
        self.b_hid = self.add_param(Constant(0.0), (g * h,), "b_hid", regularizable=False)
        self.hid_init = self.add_param(hid_init, (1, h), "hid_init", rng,
                                       trainable=self.learn_init, regularizable=False)  # fmt: skip

    # -- calling --------------------------------------------------------------------------
    def __call__(self, x, *, mask: Any = None, deterministic: bool = False):
        """Apply the layer to ``(batch, time, features)`` sequences; ``mask`` ``(batch,
        time)`` marks real steps with 1 (or call it on the list ``[x, mask]``)."""
        if isinstance(x, list | tuple):
            if len(x) != 2 or mask is not None:
                raise SymnnTypeError(
                    f"{type(self).__name__}{self._label()} is called on x or on [x, mask]; got "
                    f"{describe(x)}."
                )
            x, mask = x
        x = self._check_input(x)
        if mask is None:
            return tag_call(self, [x], self.get_output_for(x, deterministic=deterministic))
        mask = self._check_mask(mask, x)
        out = self.get_output_for(x, mask=mask, deterministic=deterministic)
        return tag_call(self, [x, mask], out, as_list=True)

    def _check_input(self, x):
        x = super()._check_input(x)
        if x.type.ndim != 3:
            raise SymnnValueError(
                f"{type(self).__name__}{self._label()} takes sequences (batch, time, "
                f"{self.n_in}); got {x.type} (put Reshape((time, {self.n_in})) first for "
                "flat rows)."
            )
        return x

    def _check_mask(self, mask, x):
        if isinstance(mask, np.ndarray | list):
            mask = pt.as_tensor_variable(np.asarray(mask, dtype=x.dtype))
        if not isinstance(mask, pt.TensorVariable) or mask.type.ndim != 2:
            raise SymnnValueError(
                f"{type(self).__name__}{self._label()} mask must be a (batch, time) tensor; "
                f"got {describe(mask)}."
            )
        return pt.cast(mask, x.dtype)

    def get_output_for(self, x, *, mask=None, deterministic: bool = False):
        n = x.shape[0]
        steps = x.dimshuffle(1, 0, 2)  # (time, batch, features)
        if self.precompute_input:
            steps = pt.dot(steps, self.W_in) + self.b_in
        sequences = [steps] if mask is None else [steps, mask.dimshuffle(1, 0, "x")]
        init = [pt.repeat(self.hid_init, n, axis=0)]
        if self.n_states == 2:
            init.append(pt.zeros((n, self.n_units), dtype=x.dtype))
        outs = pytensor.scan(
            self._step_with_mask if mask is not None else self._step,
            sequences=sequences, outputs_info=init,
            non_sequences=self._non_sequences(),
            go_backwards=self.backwards, truncate_gradient=self.gradient_steps,
            strict=True, return_updates=False,
        )  # fmt: skip
        hid = self._states_out(outs) if isinstance(outs, list | tuple) else outs
        if self.only_return_final:
            return hid[-1]
        hid = hid[::-1] if self.backwards else hid  # aligned with the input's steps
        return hid.dimshuffle(1, 0, 2)

    def _states_out(self, outs):
        """The output's states from the loop's (the hidden state)."""
        return outs[0]

    def _non_sequences(self) -> list:
        """The shared variables the step reads: ``W_hid, b_hid``, then ``W_in, b_in`` when
        the input is projected inside the loop (a subclass adds its own at the end)."""
        ins = [] if self.precompute_input else [self.W_in, self.b_in]
        return [self.W_hid, self.b_hid, *ins]

    def _step(self, x_t, *rest):
        states, params = rest[: self.n_states], rest[self.n_states :]
        return self._cell(x_t, states, params)

    def _step_with_mask(self, x_t, m_t, *rest):
        states = rest[: self.n_states]
        new = self._cell(x_t, states, rest[self.n_states :])
        new = new if isinstance(new, list) else [new]
        kept = [m_t * s_new + (1 - m_t) * s for s_new, s in zip(new, states)]
        return kept if len(kept) > 1 else kept[0]

    def _inputs(self, x_t, params):
        """The input's gate pre-activations at one step (precomputed or computed here)."""
        if self.precompute_input:
            return x_t
        W_in, b_in = params[2], params[3]
        return pt.dot(x_t, W_in) + b_in

    def _hidden(self, h, params):
        """``h @ W_hid + b_hid``, its gradient clipped to ``grad_clipping`` if set."""
        return self._clip(pt.dot(h, params[0]) + params[1])

    def _clip(self, out):
        """``out`` with its gradient clipped to ``grad_clipping`` if set."""
        return grad_clip(out, -self.grad_clipping, self.grad_clipping) if self.grad_clipping \
            else out  # fmt: skip

    def _gate(self, z, k):
        h = self.n_units
        return z[:, k * h : (k + 1) * h]

    # -- description ----------------------------------------------------------------------
    def output_shape(self, input_shape):
        if input_shape is None:
            return None
        if len(input_shape) != 2 or input_shape[-1] != self.n_in:
            raise SymnnValueError(
                f"takes sequences of shape (time, {self.n_in}) per sample; the layer before "
                f"gives {input_shape}."
            )
        return (self.n_units,) if self.only_return_final else (input_shape[0], self.n_units)

    def torch_keys(self, suffix: str = "") -> list[tuple[str, Any, bool]]:
        """``(PyTorch's name, parameter, transposed)`` for ``load_state_dict``: PyTorch's
        ``nn.RNN``/``LSTM``/``GRU`` keep ``weight_ih_l0`` as ``(gates * n_units, n_in)``."""
        return [(f"weight_ih_l0{suffix}", self.W_in, True),
                (f"weight_hh_l0{suffix}", self.W_hid, True),
                (f"bias_ih_l0{suffix}", self.b_in, False),
                (f"bias_hh_l0{suffix}", self.b_hid, False)]  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        config = {
            "n_in": self.n_in, "n_units": self.n_units, "learn_init": self.learn_init,
            "backwards": self.backwards, "only_return_final": self.only_return_final,
            "gradient_steps": self.gradient_steps, "grad_clipping": self.grad_clipping,
            "precompute_input": self.precompute_input, "name": self.name, "dtype": self.dtype,
        }  # fmt: skip
        return config


def _init_matrix(spec: Any, default: Any, block: tuple[int, int], gates: int, rng, dtype):
    """A stacked weight matrix: an array or shared variable as given, else ``gates``
    blocks drawn by the initialiser ``spec`` (``default`` when None)."""
    spec = default if spec is None else spec
    if isinstance(spec, np.ndarray | list) or hasattr(spec, "get_value"):
        return spec
    init = get_init(spec, name="init")
    return np.concatenate([init(block, rng, dtype) for _ in range(gates)], axis=1)


@register
class RNN(_Recurrent):
    """A plain recurrent layer (PyTorch's ``nn.RNN``, Lasagne's ``RecurrentLayer``):
    ``h_t = nonlinearity(x_t W_in + b_in + h_{t-1} W_hid + b_hid)``.

    >>> import pytensor.tensor as pt
    >>> RNN(3, 5, rng=0)(pt.tensor3("x", dtype="float32")).type.shape
    (None, None, 5)
    """

    def __init__(self, n_in: int, n_units: int, nonlinearity: Any = "tanh", **kwargs: Any):
        super().__init__(n_in, n_units, **kwargs)
        self.nonlinearity = nonlinearities.get(nonlinearity)

    def _cell(self, x_t, states, params):
        return self.nonlinearity(self._inputs(x_t, params) + self._hidden(states[0], params))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "nonlinearity": nonlinearities.name_of(self.nonlinearity)}


@register
class LSTM(_Recurrent):
    """Long short-term memory (PyTorch's ``nn.LSTM`` equations and gate order i, f, g, o):
    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``; with ``peepholes`` the input and
    forget gates also see ``c_{t-1}`` and the output gate ``c_t`` (Lasagne's ``LSTMLayer``).
    The layer's output is the hidden state ``h``; with ``with_cell=True``, ``h`` and the
    cell state ``c`` concatenated on the last axis (``2 * n_units``: with
    ``only_return_final``, PyTorch's ``(h_n, c_n)`` side by side).

    >>> import pytensor.tensor as pt
    >>> LSTM(3, 5, only_return_final=True, rng=0)(pt.tensor3("x", dtype="float32")).type.shape
    (None, 5)
    """

    gates = 4
    n_states = 2

    def __init__(self, n_in: int, n_units: int, peepholes: bool = False, *,
                 with_cell: bool = False, **kwargs: Any):  # fmt: skip
        if not isinstance(with_cell, bool | np.bool_):
            raise SymnnTypeError(f"with_cell must be True or False; got {describe(with_cell)}.")
        self.with_cell = bool(with_cell)
        super().__init__(n_in, n_units, **kwargs)
        self.peepholes = bool(peepholes)
        if self.peepholes:
            self.W_cell = self.add_param(Constant(0.0), (3, n_units), "W_cell",
                                         regularizable=False)  # fmt: skip

    def _non_sequences(self) -> list:
        return super()._non_sequences() + ([self.W_cell] if self.peepholes else [])

    def _cell(self, x_t, states, params):
        h, c = states
        z = self._inputs(x_t, params) + self._hidden(h, params)
        if not self.peepholes:  # one op with vectorised gates (symnn.ops.cells)
            return list(lstm_cell(z, c))
        i, f, g, o = (self._gate(z, k) for k in range(4))
        w_cell = params[-1] if self.peepholes else None
        if self.peepholes:
            i, f = i + c * w_cell[0], f + c * w_cell[1]
        c_new = pt.sigmoid(f) * c + pt.sigmoid(i) * pt.tanh(g)
        if self.peepholes:
            o = o + c_new * w_cell[2]
        return [pt.sigmoid(o) * pt.tanh(c_new), c_new]

    def _states_out(self, outs):
        return pt.concatenate(outs, axis=-1) if self.with_cell else outs[0]

    def output_shape(self, input_shape):
        shape = super().output_shape(input_shape)
        return shape if shape is None or not self.with_cell else (*shape[:-1], 2 * shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "peepholes": self.peepholes, "with_cell": self.with_cell}


@register
class GRU(_Recurrent):
    """Gated recurrent unit (PyTorch's ``nn.GRU`` equations and gate order r, z, n):
    ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}``.
    ``reset_after=False`` is the other GRU (Cho et al. 2014; Keras' ``reset_after=False``,
    ONNX's default ``linear_before_reset=0``): the reset gate applied before the product,
    ``n = tanh(x W_in + b_in + (r * h) W_hn + b_hn)``; PyTorch has no such GRU.

    >>> import pytensor.tensor as pt
    >>> GRU(3, 5, rng=0)(pt.tensor3("x", dtype="float32")).type.shape
    (None, None, 5)
    """

    gates = 3

    def __init__(self, n_in: int, n_units: int, *, reset_after: bool = True, **kwargs: Any):
        if not isinstance(reset_after, bool | np.bool_):
            raise SymnnTypeError(f"reset_after must be True or False; got {describe(reset_after)}.")
        self.reset_after = bool(reset_after)
        super().__init__(n_in, n_units, **kwargs)

    def _cell(self, x_t, states, params):
        h = states[0]
        zi = self._inputs(x_t, params)
        if self.reset_after:
            return gru_cell(zi, self._hidden(h, params), h)  # one op (symnn.ops.cells)
        u, (W_hid, b_hid) = self.n_units, params[:2]
        rz = pt.sigmoid(zi[:, : 2 * u] + self._clip(pt.dot(h, W_hid[:, : 2 * u]) + b_hid[: 2 * u]))
        r, z = rz[:, :u], rz[:, u:]
        n = pt.tanh(zi[:, 2 * u :] + self._clip(pt.dot(r * h, W_hid[:, 2 * u :]) + b_hid[2 * u :]))
        return (1 - z) * n + z * h

    def torch_keys(self, suffix: str = "") -> list[tuple[str, Any, bool]]:
        if not self.reset_after:
            raise SymnnValueError(f"GRU{self._label()} reset_after=False has no PyTorch "
                                  "counterpart (nn.GRU applies the reset gate after the "
                                  "product); its weights are not PyTorch's.")  # fmt: skip
        return super().torch_keys(suffix)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}


@register
class Bidirectional(Layer):
    """A recurrent layer run forwards and a copy of it (its own weights) backwards, their
    outputs concatenated on the features: ``(batch, time, 2 * n_units)``, or the two final
    states ``(batch, 2 * n_units)`` (PyTorch's ``bidirectional=True``, forward first).

    >>> import pytensor.tensor as pt
    >>> Bidirectional(GRU(3, 4, rng=0))(pt.tensor3("x", dtype="float32")).type.shape
    (None, None, 8)
    """

    def __init__(self, layer: _Recurrent, name: str | None = None, *, rng: Any = None):
        if not isinstance(layer, _Recurrent) or layer.backwards:
            raise SymnnTypeError(
                f"layer must be a forward RNN, LSTM or GRU; got {describe(layer)}."
            )
        self.forward = layer
        config = {**layer.get_config(), "backwards": True, "name": _suffixed(layer.name)}
        self.backward = type(layer)(**config, rng=as_rng(rng))
        super().__init__(name, layer.dtype)
        self.n_in, self.n_units = layer.n_in, 2 * layer.n_units

    def __call__(self, x, *, mask: Any = None, deterministic: bool = False):
        args = x if isinstance(x, list | tuple) else [x] + ([] if mask is None else [mask])
        ys = [la(list(args) if len(args) == 2 else args[0], deterministic=deterministic)
              for la in (self.forward, self.backward)]  # fmt: skip
        out = pt.concatenate(ys, axis=-1)
        return tag_call(self, list(args), out, as_list=len(args) == 2)

    def output_shape(self, input_shape):
        shape = self.forward.output_shape(input_shape)
        return None if shape is None else (*shape[:-1], 2 * shape[-1])

    def torch_keys(self, suffix: str = "") -> list[tuple[str, Any, bool]]:
        return self.forward.torch_keys() + self.backward.torch_keys("_reverse")

    def get_config(self) -> dict[str, Any]:
        return {"layer": _encode_layers(self.forward), "name": self.name}


def _suffixed(name: str | None) -> str | None:
    return None if name is None else f"{name}_reverse"
