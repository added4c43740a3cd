"""A character-level language model: an embedding and an LSTM read 32 characters of the
Python licence (LICENSE.txt, which ships with every CPython) and predict the next one; then
it writes text one sampled character at a time.

    python examples/char_lm.py
"""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path

import numpy as np
from _data import parser

from symnn.layers import LSTM, Dense, Embedding, Graph, Input
from symnn.train import Trainer

WINDOW = 32


def licence_text() -> str:
    """The Python licence, or (a Python without it) the docstrings of a few modules."""
    path = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    import argparse
    import json
    import pathlib

    return "\n".join(m.__doc__ or "" for m in (argparse, json, pathlib))


def windows(text: str, stride: int = 3):
    """``(X, y, alphabet)``: windows of ``WINDOW`` character ids and the id that follows."""
    alphabet = sorted(set(text))
    ids = np.array([alphabet.index(c) for c in text], dtype=np.int32)
    starts = np.arange(0, len(ids) - WINDOW, stride)
    X = np.stack([ids[s : s + WINDOW] for s in starts])
    return X, ids[starts + WINDOW], alphabet


def network(n_chars: int, units: int = 128) -> Graph:
    chars = Input((WINDOW,), name="chars", dtype="int32")
    h = Embedding(n_chars, 32, rng=0, name="embed")(chars)
    h = LSTM(32, units, only_return_final=True, rng=1, name="lstm")(h)
    return Graph(chars, Dense(units, n_chars, "softmax", rng=2, name="next")(h))


def sample(trainer: Trainer, seed: np.ndarray, alphabet: list, n: int, temperature: float,
           rng: np.random.Generator) -> str:  # fmt: skip
    """``n`` characters after ``seed``, each drawn from the predicted distribution."""
    window, out = list(seed), []
    for _ in range(n):
        p = trainer.predict_proba(np.array([window[-WINDOW:]], dtype=np.int32))[0]
        logits = np.log(np.maximum(p, 1e-12)) / temperature
        q = np.exp(logits - logits.max())
        k = int(rng.choice(len(q), p=q / q.sum()))
        window.append(k)
        out.append(alphabet[k])
    return "".join(out)


def main(epochs: int = 20, units: int = 128, n_chars: int = 300, temperature: float = 0.5,
         text: str | None = None) -> dict:  # fmt: skip
    text = licence_text() if text is None else text
    X, y, alphabet = windows(text)
    net = network(len(alphabet), units)
    print(f"{len(X)} windows of {WINDOW} characters, {len(alphabet)} distinct\n{net.summary()}")
    trainer = Trainer(net, optimizer="adam", learning_rate=3e-3, seed=0)
    t0 = time.perf_counter()
    history = trainer.fit(X, y, epochs=epochs, batch_size=128)
    print(f"trained in {time.perf_counter() - t0:.1f} s; loss {history.epochs[-1]['loss']:.3f}")
    start = max(text.find("Guido"), 0)  # prose, not the ==== under the title
    seed = np.array([alphabet.index(c) for c in text[start : start + WINDOW]], dtype=np.int32)
    generated = sample(trainer, seed, alphabet, n_chars, temperature, np.random.default_rng(0))
    print("".join(alphabet[k] for k in seed) + generated)
    return {"loss": history.epochs[-1]["loss"], "text": generated, "alphabet": alphabet,
            "accuracy": trainer.evaluate(X, y)["accuracy"]}  # fmt: skip


if __name__ == "__main__":
    ap = parser(__doc__, data=False)
    ap.epilog = "Data: the Python licence (LICENSE.txt in the standard library)."
    ap.add_argument("--epochs", type=int, default=20, help="training epochs")
    ap.add_argument("--units", type=int, default=128, help="LSTM units")
    ap.add_argument("--chars", type=int, default=300, help="characters to write")
    ap.add_argument("--temperature", type=float, default=0.5, help="sampling temperature")
    args = ap.parse_args()
    main(epochs=args.epochs, units=args.units, n_chars=args.chars, temperature=args.temperature)
