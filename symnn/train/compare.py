"""Optimisers compared on the same network, data and initial weights.

A 784-25-10 sigmoid network (by default), 100 updates on minibatches of 100 examples, and
optionally the full-training-set cost after every update. Gradient
methods take one update per minibatch; CG and L-BFGS-B take ``iterations_per_batch`` scipy
iterations per minibatch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..layers import mlp
from .callbacks import Callback
from .scipy import METHODS, ScipyTrainer
from .trainer import Trainer

__all__ = ["MethodSpec", "DEFAULT_METHODS", "compare_optimizers"]


@dataclass(frozen=True)
class MethodSpec:
    """One contender: a label, an update rule or scipy method, and its settings."""

    label: str
    optimizer: str
    learning_rate: float = 0.1
    kwargs: tuple[tuple[str, Any], ...] = ()


DEFAULT_METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("GD", "sgd", 0.3),
    MethodSpec("GD + momentum", "momentum", 0.3, (("momentum", 0.9),)),
    MethodSpec("RMSprop", "rmsprop", 0.01),
    MethodSpec("Adam", "adam", 0.01),
    MethodSpec("CG", "cg"),
    MethodSpec("L-BFGS-B", "l-bfgs-b"),
)


class _FullCost(Callback):
    """Record the full-training-set cost after every update (the learning curve)."""

    def __init__(self, data: Any, costs: list[float]):
        self.data, self.costs = data, costs

    def on_batch_end(self, trainer, step, logs):
        self.costs.append(trainer.evaluate(self.data.X_train, self.data.y_train)["loss"])


@dataclass(frozen=True)
class Comparison:
    """The settings shared by every method of :func:`compare_optimizers`."""

    hidden: Sequence[int] = (25,)
    activation: str = "sigmoid"
    n_updates: int = 100
    batch_size: int = 100
    iterations_per_batch: int = 10  # scipy iterations per minibatch
    full_cost: bool = False  # the full training cost after every update
    seed: int = 1234
    mode: Any = None


def compare_optimizers(
    data: Any,
    *,
    methods: Sequence[MethodSpec] = DEFAULT_METHODS,
    settings: Comparison | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Train one network per method from the same initial weights; return one dict per
    method with ``method``, ``seconds`` (training, compile excluded), ``compile_seconds``,
    ``accuracy`` (test), ``loss`` (final training cost) and, with ``full_cost``, the
    full-training-set cost after every update (``costs``). ``options`` are the fields of
    :class:`Comparison` (``n_updates=100, batch_size=100, ...``)."""
    settings = settings if settings is not None else Comparison(**options)
    return [_run_method(spec, data, settings) for spec in methods]


def _trainer(spec: MethodSpec, data: Any, s: Comparison) -> Trainer | ScipyTrainer:
    sizes = [data.n_features, *s.hidden, data.n_classes]
    net = mlp(sizes, hidden=s.activation, output="softmax", rng=s.seed, dtype=data.X_train.dtype)
    if spec.optimizer in METHODS:
        return ScipyTrainer(net, method=spec.optimizer, seed=s.seed, mode=s.mode)
    return Trainer(
        net,
        optimizer=spec.optimizer,
        learning_rate=spec.learning_rate,
        seed=s.seed,
        mode=s.mode,
        **dict(spec.kwargs),
    )


def _run_method(spec: MethodSpec, data: Any, s: Comparison) -> dict[str, Any]:
    trainer = _trainer(spec, data, s)
    t0 = time.perf_counter()
    trainer.compile()
    compile_seconds = time.perf_counter() - t0
    costs: list[float] = []
    callbacks = [_FullCost(data, costs)] if s.full_cost else []
    n = min(len(data.X_train), s.n_updates * s.batch_size)
    X, y = data.X_train[:n], data.y_train[:n]
    t0 = time.perf_counter()
    if isinstance(trainer, ScipyTrainer):
        trainer.fit(
            X, y, batch_size=s.batch_size, iterations_per_batch=s.iterations_per_batch,
            epochs=1, callbacks=callbacks,
        )  # fmt: skip
    else:
        trainer.fit(
            X, y, batch_size=s.batch_size, epochs=1, max_updates=s.n_updates,
            callbacks=callbacks, progress=False,
        )  # fmt: skip
    return {
        "method": spec.label,
        "seconds": time.perf_counter() - t0,
        "compile_seconds": compile_seconds,
        "accuracy": trainer.evaluate(data.X_test, data.y_test)["accuracy"],
        "loss": trainer.evaluate(data.X_train, data.y_train)["loss"],
        "updates": trainer.n_updates,
        "costs": costs,
    }
