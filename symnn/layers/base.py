"""The layer base class: parameters with tags, calling on a symbolic tensor, state updates."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.traversal import ancestors
from pytensor.tensor.basic import tensor_copy

from ..errors import SymnnTypeError, SymnnValueError
from ..init import Initializer
from ..init import get as get_init
from ..utils import INTEGER_DTYPES, as_float_dtype, as_rng, describe

__all__ = [
    "Layer",
    "get_updates",
    "attach_updates",
    "register",
    "LAYER_CLASSES",
    "layer_to_spec",
    "layer_from_spec",
]

_UPDATES_TAG = "symnn_updates"
_CALLS_TAG = "symnn_calls"


@dataclass(frozen=True)
class Call:
    """One application of a layer, recorded on the tensor it returned: the layer, the
    tensors it was called on, whether it took them as a list (merge layers, graphs of several
    inputs) and which of its outputs the tensor is (None: its only one)."""

    layer: Any
    inputs: tuple
    as_list: bool = False
    index: int | None = None


def tag_call(layer: Any, inputs: list, out: Any, *, as_list: bool = False, index=None) -> Any:
    """Record on ``out`` that ``layer`` made it from ``inputs`` (the layer DAG of a
    :class:`~symnn.layers.Graph` is read back from these records; the outermost call is the
    last). An output that is one of the inputs is copied first (a copy the compiler removes),
    so that each call has a tensor of its own."""
    if any(out is x for x in inputs):
        out = tensor_copy(out)
    calls = getattr(out.tag, _CALLS_TAG, None)
    if calls is None:
        calls = []
        setattr(out.tag, _CALLS_TAG, calls)
    calls.append(Call(layer, tuple(inputs), as_list, index))
    return out


def calls_of(var: Any) -> list[Call]:
    """The layer calls recorded on ``var``, innermost first."""
    return list(getattr(getattr(var, "tag", None), _CALLS_TAG, ()))


def attach_updates(output, updates: dict) -> Any:
    """Record state updates (batch-norm statistics, RNG states) on a layer's output.

    :func:`get_updates` finds them again from any expression built on that output.
    """
    if updates:
        setattr(output.tag, _UPDATES_TAG, dict(updates))
    return output


def get_updates(*outputs) -> dict:
    """The state updates of every layer in the graphs of ``outputs``.

    These are the non-gradient updates a training function must apply: batch-norm running
    statistics and the random-generator states of dropout. Layers called with
    ``deterministic=True`` record none.

    >>> import pytensor.tensor as pt
    >>> from symnn.layers import Dropout
    >>> x = pt.matrix("x", dtype="float32")
    >>> len(get_updates(Dropout(0.5, rng=0)(x))), len(get_updates(x))
    (1, 0)
    """
    found: dict = {}
    for var in ancestors(list(outputs)):
        for k, v in getattr(var.tag, _UPDATES_TAG, {}).items():
            found[k] = v
    return found


#: Layer classes that :func:`layer_from_spec` can rebuild, by class name.
LAYER_CLASSES: dict[str, type] = {}


def register(cls: type) -> type:
    """Make a layer class saveable and loadable by name (a class decorator).

    symnn's own layers are registered; a layer of your own (a :class:`Layer` subclass with
    ``add_param`` and ``get_output_for``) needs this one line to go through
    :func:`symnn.save`/:func:`symnn.load`. Its configuration is its constructor arguments
    (see :meth:`Layer.get_config`).

    >>> @register
    ... class Scale(Layer):
    ...     def __init__(self, factor: float = 2.0, name=None, dtype=None):
    ...         super().__init__(name, dtype)
    ...         self.factor = factor
    ...     def get_output_for(self, x, *, deterministic=False):
    ...         return x * self.factor
    >>> layer_from_spec(layer_to_spec(Scale(3.0))).factor
    3.0
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise SymnnTypeError(f"register takes a Layer subclass; got {describe(cls)}.")
    known = LAYER_CLASSES.get(cls.__name__)
    if known is not None and known is not cls and known.__module__.startswith("symnn."):
        raise SymnnValueError(
            f"a symnn layer is already registered as {cls.__name__!r}; give your class "
            "another name."
        )
    LAYER_CLASSES[cls.__name__] = cls
    return cls


def layer_to_spec(layer: Layer) -> dict[str, Any]:
    """``{"class": name, "config": {...}}`` for a registered layer; refuses (at save time,
    never at load time) a layer whose exact class is not registered."""
    name = type(layer).__name__
    if LAYER_CLASSES.get(name) is not type(layer):
        raise SymnnValueError(
            f"{name} is not a registered layer, so it cannot be saved; decorate the class with "
            f"symnn.layers.register (registered: {', '.join(LAYER_CLASSES)})."
        )
    return {"class": name, "config": layer.get_config()}


def layer_from_spec(spec: Any) -> Layer:
    """Rebuild a layer (weights freshly allocated; the caller sets their values)."""
    if not isinstance(spec, dict) or "class" not in spec or "config" not in spec:
        raise SymnnValueError(
            "the architecture is malformed: expected {'class': ..., 'config': ...} for each layer."
        )
    cls = LAYER_CLASSES.get(spec["class"])
    if cls is None:
        raise SymnnValueError(
            f"unknown layer class {spec['class']!r} in the architecture; "
            f"expected one of {', '.join(LAYER_CLASSES)} (register your own with "
            "symnn.layers.register before loading)."
        )
    if not isinstance(spec["config"], dict):
        raise SymnnValueError(f"bad configuration for {spec['class']}: not a mapping.")
    try:
        return cls.from_config(dict(spec["config"]))
    except (TypeError, KeyError) as exc:
        raise SymnnValueError(f"bad configuration for {spec['class']}: {exc}") from None


def _holds_layers(name: str, value: Any) -> bool:
    """Whether an attribute holds sub-layers: a Layer, or a list, tuple or dict with one."""
    if name.startswith("_"):
        return False
    if isinstance(value, Layer):
        return True
    if isinstance(value, list | tuple):
        return any(isinstance(v, Layer) for v in value)
    if isinstance(value, dict):
        return any(isinstance(v, Layer) for v in value.values())
    return False


_LAYER_KEY = "symnn.layer"


def _encode_layers(value: Any) -> Any:
    """A constructor argument for the configuration: a layer (or a list of them) as its spec."""
    if isinstance(value, Layer):
        return {_LAYER_KEY: layer_to_spec(value)}
    if isinstance(value, list | tuple) and any(isinstance(v, Layer) for v in value):
        return [_encode_layers(v) for v in value]
    return value


def _decode_layers(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_LAYER_KEY}:
        return layer_from_spec(value[_LAYER_KEY])
    if isinstance(value, list) and any(isinstance(v, dict) and _LAYER_KEY in v for v in value):
        return [_decode_layers(v) for v in value]
    return value


class Layer:
    """Base class of symnn layers.

    A layer owns its parameters as ``pytensor.shared`` variables, each tagged
    ``trainable`` and/or ``regularizable`` (Lasagne's tags). Calling a layer on a symbolic
    tensor returns a symbolic tensor; ``deterministic=True`` selects inference behaviour.
    Subclasses implement :meth:`get_output_for` and, for save/load, :meth:`get_config`.
    """

    #: number of input features (last axis) the layer expects, or None if any
    n_in: int | None = None
    #: a layer without parameters (pooling, reshaping) takes either float type
    any_dtype: bool = False
    #: with ``any_dtype``, integer and boolean tensors too (numpy's and ONNX's integer
    #: semantics: wrapping arithmetic, division truncated towards zero)
    integer_ok: bool = False
    #: the output has the input's shape (dropout, normalisation of the input)
    keeps_shape: bool = False

    def __init__(self, name: str | None = None, dtype: Any = None):
        if name is not None and not isinstance(name, str):
            raise SymnnTypeError(f"name must be a string or None; got {describe(name)}.")
        # sub-layers assigned before this call are adopted too
        self._children = {k: v for k, v in vars(self).items() if _holds_layers(k, v)}
        self.name = name
        self.dtype = as_float_dtype(dtype)
        self._params: dict[SharedVariable, set[str]] = {}
        self._rngs: list = []  # shared random generators (dropout masks)

    # -- sub-layers -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        """A layer assigned as an attribute (alone, or in a list, tuple or dict) is a
        sub-layer: its parameters, state updates and generators are this layer's too."""
        children = self.__dict__.get("_children")
        if children is not None and not name.startswith("_"):
            if _holds_layers(name, value):
                children[name] = value
            else:
                children.pop(name, None)
        object.__setattr__(self, name, value)

    def sublayers(self) -> list[tuple[str, Layer]]:
        """The direct sub-layers with their attribute paths (``"conv_a"``, ``"blocks.0"``),
        in assignment order.

        >>> class Block(Layer):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.dense = Dense(3, 3, rng=0)
        ...         self.others = [Dense(3, 3, rng=1)]
        >>> from symnn.layers import Dense
        >>> [name for name, _ in Block().sublayers()], len(Block().params)
        (['dense', 'others.0'], 4)
        """
        out = []
        for attr, value in self.__dict__.get("_children", {}).items():
            if isinstance(value, Layer):
                out.append((attr, value))
            else:
                items = value.items() if isinstance(value, dict) else enumerate(value)
                out.extend((f"{attr}.{k}", v) for k, v in items if isinstance(v, Layer))
        return out

    def sublayer_rows(self, indent: str = "  ") -> list[tuple[str, int]]:
        """``(label, parameter count)`` of every sub-layer, nested ones indented further
        (the rows a container's ``summary()`` shows under this layer)."""
        rows = []
        for path, child in self.sublayers():
            count = sum(int(np.prod(p.get_value(borrow=True).shape)) for p in child.get_params())
            rows.append((f"{indent}.{path} {type(child).__name__}", count))
            rows.extend(child.sublayer_rows(indent + "  "))
        return rows

    def get_sublayer(self, path: str) -> Layer:
        """The sub-layer at a dotted attribute path (``"block.conv_a"``)."""
        layer = self
        for i, part in enumerate(path.split(".")):
            found = dict(layer.sublayers())
            key = part if part in found else ".".join(path.split(".")[i : i + 2])
            if part not in found and key not in found:
                raise SymnnValueError(
                    f"{type(layer).__name__}{layer._label()} has no sub-layer {part!r} (in "
                    f"{path!r}); its sub-layers are {', '.join(found) or 'none'}."
                )
            layer = found[key]
        return layer

    # -- parameters -----------------------------------------------------------------
    def add_param(
        self,
        spec: Any,
        shape: Sequence[int],
        name: str,
        rng: np.random.Generator | None = None,
        *,
        trainable: bool = True,
        regularizable: bool = True,
    ) -> SharedVariable:
        """Create (or adopt) a parameter and register it with its tags.

        ``spec`` is an initialiser, an array of the right shape, or a shared variable.
        """
        shape = tuple(int(s) for s in shape)
        full_name = f"{self.name}.{name}" if self.name else name
        if isinstance(spec, SharedVariable):
            value = spec.get_value(borrow=True)
            if value.shape != shape:
                raise SymnnValueError(
                    f"{name} is a shared variable of shape {value.shape}; expected {shape}."
                )
            var = spec
        else:
            if isinstance(spec, (Initializer, str, type)):
                value = get_init(spec, name=name)(shape, as_rng(rng), self.dtype)
            else:
                try:
                    value = np.asarray(spec, dtype=self.dtype)
                except (TypeError, ValueError):
                    raise SymnnTypeError(
                        f"{name} must be an initialiser, an array or a shared variable; "
                        f"got {describe(spec)}."
                    ) from None
                if value.shape != shape:
                    raise SymnnValueError(f"{name} has shape {value.shape}; expected {shape}.")
                if not np.all(np.isfinite(value)):
                    raise SymnnValueError(
                        f"{name} contains NaN or infinity; expected finite values."
                    )
            var = pytensor.shared(value.copy(), name=full_name, shape=value.shape)
        tags = {t for t, on in (("trainable", trainable), ("regularizable", regularizable)) if on}
        self._params[var] = tags
        return var

    def get_params(self, *, trainable: bool | None = None, regularizable: bool | None = None):
        """Parameters in creation order, then those of the sub-layers in their order (each
        once), filtered by tag (``None`` means either)."""
        out = []
        for var, tags in self._params.items():
            if trainable is not None and ("trainable" in tags) != trainable:
                continue
            if regularizable is not None and ("regularizable" in tags) != regularizable:
                continue
            out.append(var)
        for _, child in self.sublayers():
            out.extend(child.get_params(trainable=trainable, regularizable=regularizable))
        return list(dict.fromkeys(out))

    @property
    def params(self) -> list[SharedVariable]:
        """Trainable parameters, each layer's ``W`` before its ``b``."""
        return self.get_params(trainable=True)

    @property
    def regularizable_params(self) -> list[SharedVariable]:
        """Trainable parameters that weight decay applies to (weights; not biases)."""
        return self.get_params(trainable=True, regularizable=True)

    def get_values(self) -> list[np.ndarray]:
        """Copies of every parameter's value, including non-trainable state (batch-norm
        statistics), in :meth:`get_params` order."""
        return [np.asarray(p.get_value()) for p in self.get_params()]

    def set_values(self, values: Iterable[Any]) -> None:
        """Set every parameter from arrays in :meth:`get_params` order.

        All shapes are checked before anything is written, so a wrong list leaves the
        layer unchanged.
        """
        params = self.get_params()
        values = list(values)
        if len(values) != len(params):
            raise SymnnValueError(
                f"values has {len(values)} arrays; expected {len(params)} "
                f"({', '.join(str(p.name) for p in params)})."
            )
        cast = []
        for p, v in zip(params, values):
            want = p.get_value(borrow=True)
            arr = np.asarray(v)
            if arr.shape != want.shape:
                raise SymnnValueError(
                    f"values for {p.name} has shape {arr.shape}; expected {want.shape}."
                )
            if arr.dtype.kind not in "biuf" or not np.all(np.isfinite(arr)):
                raise SymnnValueError(f"values for {p.name} must be finite numbers.")
            cast.append(arr.astype(want.dtype))
        for p, arr in zip(params, cast):
            p.set_value(arr)

    def get_rngs(self) -> list:
        """The layer's and its sub-layers' shared random generators (their state is part of
        a saved run)."""
        found = list(self._rngs)
        for _, child in self.sublayers():
            found.extend(child.get_rngs())
        return list(dict.fromkeys(found))

    # -- calling ----------------------------------------------------------------------
    def __call__(self, x, *, deterministic: bool = False):
        """Apply the layer to a symbolic tensor (or an array, which becomes a constant)."""
        x = self._check_input(x)
        return tag_call(self, [x], self.get_output_for(x, deterministic=deterministic))

    def _check_input(self, x):
        if isinstance(x, np.ndarray | list | tuple):
            x = pt.as_tensor_variable(np.asarray(x, dtype=self.dtype))
        if not isinstance(x, pt.TensorVariable):
            raise SymnnTypeError(
                f"{type(self).__name__} input must be a symbolic tensor "
                f"(e.g. pt.matrix('x', dtype='{self.dtype}')); got {describe(x)}."
            )
        if x.type.dtype != self.dtype and not (
            self.any_dtype and x.type.dtype in ("float32", "float64")
            or self.any_dtype and self.integer_ok and x.type.dtype in INTEGER_DTYPES
        ):
            raise SymnnTypeError(
                f"{type(self).__name__}{self._label()} input has dtype {x.type.dtype}; expected "
                f"{self.dtype} (the layer's dtype). Mixing float types would silently compute "
                "the graph in float64; cast the input or build the layer with dtype="
                f"'{x.type.dtype}'."
                if x.type.dtype in ("float32", "float64")
                else f"{type(self).__name__} input has dtype {x.type.dtype}; expected {self.dtype}."
            )
        if self.n_in is not None:
            if x.type.ndim < 1:
                raise SymnnValueError(
                    f"{type(self).__name__} input is a scalar; expected a matrix (n, {self.n_in})."
                )
            width = x.type.shape[-1]
            if width is not None and width != self.n_in:
                raise SymnnValueError(
                    f"{type(self).__name__}{self._label()} expects {self.n_in} input features; "
                    f"the input has {width} (type {x.type})."
                )
        return x

    def _label(self) -> str:
        return f" '{self.name}'" if self.name else ""

    def get_output_for(self, x, *, deterministic: bool = False):
        """The symbolic output for a checked input ``x``."""
        raise SymnnTypeError(f"{type(self).__name__} does not define get_output_for.")

    # -- description --------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-serialisable).

        By default: every parameter of ``__init__`` except weights and generators (``W``,
        ``b``, ``rng`` and parameters whose attribute holds a shared variable), read from the
        attribute of the same name; a layer whose constructor arguments are not all kept as
        attributes overrides this.
        """
        config = {}
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if name in ("rng", "W", "b"):
                continue
            if not hasattr(self, name):
                raise SymnnTypeError(
                    f"{type(self).__name__} cannot describe its configuration: it keeps no "
                    f"attribute {name!r} for its constructor argument; define get_config."
                )
            value = getattr(self, name)
            if isinstance(value, SharedVariable):
                continue
            config[name] = _encode_layers(value)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild the layer from :meth:`get_config` (its weights are then set by the caller);
        constructor arguments that are layers come back as layers."""
        return cls(**{k: _decode_layers(v) for k, v in config.items()})

    def output_size(self, input_size: int | None) -> int | None:
        """Number of output features given ``input_size`` input features."""
        return input_size

    def output_shape(self, input_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """The per-sample output shape (batch axis left out) for a per-sample input shape
        (None: not known); :class:`~symnn.errors.SymnnValueError` when the layer cannot take
        that shape. By default the layer maps the last axis (``n_in`` features) to
        :meth:`output_size` features."""
        if input_shape is None:
            return None if self.n_in is None else (self.output_size(self.n_in),)
        if self.n_in is not None and input_shape[-1] != self.n_in:
            given = input_shape[0] if len(input_shape) == 1 else f"shape {input_shape}"
            raise SymnnValueError(
                f"expects {self.n_in} inputs but the layer before it gives {given}."
            )
        return (*input_shape[:-1], self.output_size(input_shape[-1]))

    def __repr__(self) -> str:
        try:
            cfg = self.get_config()
        except SymnnTypeError:
            cfg = {}
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k not in ("dtype",))
        return f"{type(self).__name__}({args})"


def pad_constant(x: Any, widths: Sequence[tuple[int, int]], value: float = 0.0) -> Any:
    """``x`` padded by ``widths`` (``(before, after)`` per axis) with ``value``, in ``x``'s
    own float type (``pt.pad`` computes a float32 tensor in float64).

    >>> import pytensor.tensor as pt
    >>> pad_constant(pt.matrix("x", dtype="float32"), [(0, 0), (1, 2)]).dtype
    'float32'
    """
    sizes = [x.shape[i] + before + after for i, (before, after) in enumerate(widths)]
    out = pt.alloc(np.asarray(value, dtype=x.dtype), *sizes)
    window = tuple(slice(before, before + x.shape[i]) for i, (before, _) in enumerate(widths))
    return pt.set_subtensor(out[window], x)
