"""What the commands share: one-line usage errors, the argument types, the epoch table and
the compile notes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


class _UsageError(Exception):
    """A bad argument found after parsing (reported in one line, exit code 2)."""


# -- helpers -------------------------------------------------------------------------------


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _UsageError(
            f"{name} {text!r} must be comma-separated integers, e.g. 64,100,10"
        ) from None
    if not values:
        raise _UsageError(f"{name} is empty")
    return values


def _number(kind: type, low: float, *, low_ok: bool = True, high: float | None = None):
    """An argparse type: a ``kind`` number >= ``low`` (> with ``low_ok=False``), < ``high``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        ok = value is not None and (value >= low if low_ok else value > low)
        if ok and high is not None:
            ok = value < high
        if not ok:
            what = "an integer" if kind is int else "a number"
            bound = f"{'>=' if low_ok else '>'} {low:g}" + (f" and < {high:g}" if high else "")
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what} {bound}")
        return value

    return parse


_POSITIVE_INT = _number(int, 1)


_COUNT = _number(int, 0)


_POSITIVE = _number(float, 0, low_ok=False)


_NONNEGATIVE = _number(float, 0)


_FRACTION = _number(float, 0, high=1)


def _layer(text: str) -> int | str:
    """``--layer``: a position (an integer) or a layer's name."""
    try:
        return int(text)
    except ValueError:
        return text


def _out_dir(text: str) -> Path:
    """The output folder, created now: a bad one is reported before anything is compiled."""
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {text!r} is a file; expected a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--out {text!r} cannot be created: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise _UsageError(f"--out {text!r} is not writable")
    return out


def _shape(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise _UsageError(f"--image-shape {text!r} must look like 28x28") from None


def _print_epoch(write, logs: dict[str, float], header: list[bool]) -> None:
    keys = [
        k for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds") if k in logs
    ]
    if not header[0]:
        write("  ".join(f"{k:>12}" for k in keys))
        header[0] = True
    cells = [f"{int(logs[k]):>12d}" if k == "epoch" else f"{logs[k]:>12.4f}" for k in keys]
    write("  ".join(cells))


def _epoch_printer(progress: bool):
    from ..train import LambdaCallback

    header = [False]
    if progress:
        from tqdm.auto import tqdm

        write = tqdm.write
    else:
        write = print
    return LambdaCallback(on_epoch_end=lambda t, e, logs: _print_epoch(write, logs, header))


def _compile_note(what: str, cold: str = "5-10 s") -> None:
    from ..backend.parallel import compile_jobs

    print(
        f"compiling {what} (with an empty compile cache: C code, {cold} on 2 cores, "
        f"{compile_jobs()} compilers at once here; cached for later runs)...",
        flush=True,
    )


def _modules() -> int:
    """How many C modules this process has compiled so far (see :func:`_new_modules`)."""
    from ..backend.parallel import modules_compiled

    return modules_compiled()


def _new_modules(modules_before: int) -> str:
    """``38 new C modules`` or ``C code cached``: what compiling just cost."""
    n = _modules() - modules_before
    return f"{n} new C module{'s' if n != 1 else ''}" if n else "C code cached"


def _compiled(t0: float, modules_before: int) -> str:
    return f"compiled in {time.perf_counter() - t0:.1f} s ({_new_modules(modules_before)})"


# -- commands ------------------------------------------------------------------------------


def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or a positive integer")
    return value


def _blas_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--blas-threads",
        type=_threads,
        default="auto",
        help="BLAS threads: 'auto' (chosen by timing, default) or a number, for runs that are "
        "bit-identical from one run to the next",
    )


def _load_data(spec: str, seed: int):
    """The named data set (:func:`symnn.datasets.load_dataset`, which owns the names)."""
    from ..datasets import load_dataset

    return load_dataset(spec, seed=seed)


def usage_message(exc: Exception, flags: dict[str, str] | None = None) -> str | None:
    """A library error about a parameter, said with the command line's flag for it
    (``data='cifar' is not known`` -> ``--data 'cifar' is not known``); None for others."""
    from ..errors import SymnnError

    if not isinstance(exc, SymnnError):
        return None
    text, name = str(exc), getattr(exc, "parameter", None)
    if name and text.startswith((f"{name}=", f"{name} ")):
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        text = f"{flag} {text[len(name) + 1 :]}"
    return text
