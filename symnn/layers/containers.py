"""Composing layers: ``Sequential`` and the ``mlp`` builder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .. import init as inits
from .. import nonlinearities
from ..errors import SymnnTypeError, SymnnValueError
from ..utils import as_float_dtype, as_rng, describe
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

    def __init__(self, layers: Sequence[Layer], name: str | None = None):
        layers = list(layers)
        if not layers:
            raise SymnnValueError("layers is empty; expected at least one Layer.")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise SymnnTypeError(f"layers[{i}] is not a symnn Layer; got {describe(layer)}.")
        dtypes = {layer.dtype for layer in layers}
        if len(dtypes) > 1:
            raise SymnnValueError(f"layers mix float types {sorted(dtypes)}; expected one.")
        super().__init__(name, layers[0].dtype)
        size = None
        for i, layer in enumerate(layers):
            if size is not None and layer.n_in is not None and layer.n_in != size:
                raise SymnnValueError(
                    f"layers[{i}] ({type(layer).__name__}) expects {layer.n_in} inputs but the "
                    f"layer before it gives {size}."
                )
            size = layer.output_size(size if layer.n_in is None else layer.n_in)
        self.layers = layers
        self.n_in = next((la.n_in for la in layers if la.n_in is not None), None)
        self.n_out = size
        for layer in layers:
            self._params.update(layer._params)
            self._rngs.extend(layer._rngs)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

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

    def get_config(self) -> dict[str, Any]:
        return {"layers": [layer_to_spec(la) for la in self.layers], "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        return cls([layer_from_spec(spec) for spec in config["layers"]], name=config.get("name"))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(la) for la in self.layers)
        return f"Sequential([\n  {inner}\n])"


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
