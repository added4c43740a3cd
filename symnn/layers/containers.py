"""Composing layers: ``Sequential`` and the ``mlp`` builder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt

from .. import init as inits
from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..utils import INTEGER_DTYPES, as_float_dtype, as_rng, describe
from .base import Layer, layer_from_spec, layer_to_spec, register
from .dense import Activation, Dense
from .noise import Dropout
from .normalization import BatchNorm

__all__ = ["Sequential", "mlp"]


@register
class Sequential(Layer):
    """Layers applied one after another.

    ``params`` lists the layers' trainable parameters in layer order (each ``W`` before its
    ``b``); :meth:`get_outputs` returns every layer's output, for looking inside.

    >>> import pytensor.tensor as pt
    >>> net = Sequential([Dense(4, 3, "tanh", rng=0), Dense(3, 2, "softmax", rng=1)])
    >>> [p.name for p in net.params]
    ['W', 'b', 'W', 'b']
    >>> net(pt.matrix("x", dtype="float32")).type
    TensorType(float32, shape=(None, 2))
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        name: str | None = None,
        *,
        class_names: Sequence[str] | None = None,
    ):
        layers = list(layers)
        if not layers:
            raise SymnnValueError("layers is empty; expected at least one Layer.")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise SymnnTypeError(f"layers[{i}] is not a symnn Layer; got {describe(layer)}.")
        typed = [la for la in layers if not la.any_dtype] or layers
        dtypes = {layer.dtype for layer in typed}
        if len(dtypes) > 1:
            raise SymnnValueError(f"layers mix float types {sorted(dtypes)}; expected one.")
        super().__init__(name, typed[0].dtype)
        self.layers = layers
        #: each layer's per-sample output shape (None where not known)
        self.output_shapes = _track_shapes(layers)
        self.n_in = _input_width(layers)
        last = self.output_shapes[-1]
        self.n_out = last[0] if last is not None and len(last) == 1 else None
        self.class_names = class_names

    @property
    def class_names(self) -> list[str] | None:
        """Names of the output units (a classifier's classes), saved with the network and
        used to title figures; None when not given."""
        return self._class_names

    @class_names.setter
    def class_names(self, names: Sequence[str] | None) -> None:
        if names is not None:
            names = [str(n) for n in names] if not isinstance(names, str) else None
            if names is None or (self.n_out is not None and len(names) != self.n_out):
                raise SymnnValueError(
                    f"class_names must be one name per output unit ({self.n_out}); got {names!r}."
                )
        self._class_names = names

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def _check_input(self, x):
        if isinstance(x, pt.TensorVariable) and x.type.dtype in INTEGER_DTYPES:
            return x  # the first layer takes integers (Embedding, integer_ok) or says it does not
        return super()._check_input(x)

    def get_outputs(self, x, *, deterministic: bool = False) -> list:
        """Every layer's output, in order (the last one is the network's output)."""
        x = self._check_input(x)
        outputs = []
        for layer in self.layers:
            x = layer(x, deterministic=deterministic)
            outputs.append(x)
        return outputs

    def get_output_for(self, x, *, deterministic: bool = False):
        return self.get_outputs(x, deterministic=deterministic)[-1]

    def output_size(self, input_size):
        return self.n_out

    def output_shape(self, input_shape):
        if input_shape is None:
            return self.output_shapes[-1]
        return _track_shapes(self.layers, input_shape)[-1]

    def summary(self) -> str:
        """A table of the layers: name, class, per-sample output shape, parameter count.

        >>> print(Sequential([Dense(4, 3, "tanh", rng=0), Dense(3, 2, rng=1)]).summary())
        #  layer  output  params
        0  Dense    (3,)      15
        1  Dense    (2,)       8
        total parameters: 23 (23 trainable)
        """
        rows = [("#", "layer", "output", "params")]
        for i, (layer, shape) in enumerate(zip(self.layers, self.output_shapes)):
            label = type(layer).__name__ + (f" '{layer.name}'" if layer.name else "")
            count = sum(int(np.prod(p.get_value(borrow=True).shape)) for p in layer.get_params())
            rows.append((str(i), label, "?" if shape is None else str(shape), str(count)))
            if not isinstance(layer, Sequential):  # a block's sub-layers, indented
                rows.extend(("", sub, "", str(n)) for sub, n in layer.sublayer_rows())
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        lines = [
            f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}"
            for r in rows
        ]
        total = sum(int(np.prod(p.get_value(borrow=True).shape)) for p in self.get_params())
        trainable = sum(int(np.prod(p.get_value(borrow=True).shape)) for p in self.params)
        lines.append(f"total parameters: {total} ({trainable} trainable)")
        return "\n".join(line.rstrip() for line in lines)

    def get_config(self) -> dict[str, Any]:
        config = {"layers": [layer_to_spec(la) for la in self.layers], "name": self.name}
        if self.class_names is not None:
            config["class_names"] = list(self.class_names)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        layers = [layer_from_spec(spec) for spec in config["layers"]]
        return cls(layers, name=config.get("name"), class_names=config.get("class_names"))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(la) for la in self.layers)
        return f"Sequential([\n  {inner}\n])"


def _track_shapes(layers: list[Layer], shape: tuple[int, ...] | None = None) -> list:
    """Each layer's per-sample output shape, the first layer fed ``shape``; a layer that
    cannot take what the layer before gives is named."""
    shapes = []
    for i, layer in enumerate(layers):
        try:
            shape = layer.output_shape(shape)
        except SymnnValueError as exc:
            raise SymnnValueError(f"layers[{i}] ({type(layer).__name__}) {exc}") from None
        shapes.append(None if shape is None else tuple(int(s) for s in shape))
    return shapes


def _input_width(layers: list[Layer]) -> int | None:
    """The network's input width: that of its first layer with one, looking past layers
    that keep the shape (dropout, normalisation of the input)."""
    for layer in layers:
        if layer.n_in is not None:
            return layer.n_in
        if not layer.keeps_shape:
            return None
    return None


def _default_init(activation: str | Any) -> inits.Initializer:
    if activation in ("relu", "leaky_relu", "elu", "prelu"):
        return inits.HeUniform()
    return inits.GlorotUniform()


def mlp(
    sizes: Sequence[int],
    hidden: Any = "relu",
    output: Any = "softmax",
    *,
    rng: Any = None,
    dropout: float = 0.0,
    batch_norm: bool = False,
    init: Any = None,
    dtype: Any = None,
) -> Sequential:
    """A multilayer perceptron such as ``[784, 100, 10]``: Dense layers with ``hidden``
    activations and an ``output`` activation on the last one.

    Parameters
    ----------
    sizes
        Layer widths, input first: ``[784, 100, 10]`` is one hidden layer of 100 units.
    hidden, output
        Activation names or callables for hidden layers and the output layer.
    rng
        Seed or Generator for the weights and dropout masks (same seed, same network).
    dropout
        Dropout probability after each hidden layer (0 for none).
    batch_norm
        Insert batch normalisation before each hidden activation.
    init
        Weight initialiser; by default He uniform for rectifiers, Glorot uniform otherwise.

    >>> net = mlp([784, 100, 10], hidden="sigmoid", rng=0)
    >>> [tuple(p.get_value().shape) for p in net.params]
    [(784, 100), (100,), (100, 10), (10,)]
    """
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise SymnnTypeError(f"sizes must be a sequence of ints; got {sizes!r}.") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise SymnnValueError(
            f"sizes={sizes} is not valid; expected at least two positive widths "
            "such as [784, 100, 10]."
        )
    nonlinearities.get(hidden, name="hidden")
    nonlinearities.get(output, name="output")
    dtype = as_float_dtype(dtype)
    gen = as_rng(rng)
    layers: list[Layer] = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == n_layers - 1
        act = output if last else hidden
        w_init = init if init is not None else _default_init(act if isinstance(act, str) else None)
        if batch_norm and not last:
            layers.append(
                Dense(
                    n_in, n_out, "linear", W=w_init, b=None, rng=gen, dtype=dtype, name=f"dense{i}"
                )
            )
            layers.append(BatchNorm(n_out, dtype=dtype, name=f"bn{i}"))
            layers.append(Activation(n_out, hidden, dtype=dtype, name=f"act{i}"))
        else:
            layers.append(Dense(n_in, n_out, act, W=w_init, rng=gen, dtype=dtype, name=f"dense{i}"))
        if dropout and not last:
            layers.append(Dropout(dropout, rng=gen, dtype=dtype, name=f"dropout{i}"))
    net = Sequential(layers)
    net.sizes = sizes
    return net
