"""PyTorch for the comparisons against it. The test extra installs torch's CPU build on
Python < 3.12 (``torch==2.13.0``), so CI's oldest run makes every comparison; a missing torch
there is a failure, not a skip. On newer Pythons PyPI offers only a multi-GB CUDA build, which
the test extra leaves out: the comparisons run when torch is installed and skip otherwise."""

import sys

import pytest

IN_TEST_EXTRA = sys.version_info < (3, 12)


def import_torch():
    if IN_TEST_EXTRA:
        import torch

        return torch
    return pytest.importorskip("torch", reason="the test extra installs torch on Python < 3.12")
