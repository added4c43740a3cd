"""scikit-learn estimators over symnn's trainers.

- :mod:`~symnn.estimator.mlp`: ``MLPClassifier`` and ``MLPRegressor``, drop-ins for
  scikit-learn's (same parameters, defaults, meanings and fitted attributes).
- :mod:`~symnn.estimator.net`: ``NetClassifier`` and ``NetRegressor``, any symnn network
  (from a builder, with ``network__`` parameters) as an estimator.
- :mod:`~symnn.estimator.base`: what every estimator shares (validation, training through
  :class:`symnn.train.Trainer`, pickling without compiled functions).
- :mod:`~symnn.estimator.settings`: what the hyperparameters mean (solvers, schedules,
  deprecated spellings, warnings for the ones a solver does not use).
- :mod:`~symnn.estimator.epochs`: scikit-learn's epoch rules (stopping, ``adaptive`` and
  ``invscaling`` learning rates, early stopping) as a training callback.
"""

from .mlp import MLPClassifier, MLPRegressor
from .net import NetClassifier, NetRegressor, dense_network

__all__ = ["MLPClassifier", "MLPRegressor", "NetClassifier", "NetRegressor", "dense_network"]
