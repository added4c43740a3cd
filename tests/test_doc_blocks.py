"""Every ``python`` code block of the README and of ``docs/`` runs as a user pastes it: each
block on its own, in a fresh namespace and an empty working folder, on symnn's default backend
(a block that starts with ``# continues the block above`` runs after the one before it, as a
user pastes both)."""

import re
from pathlib import Path

import pytest
from _torch import import_torch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONTINUES = "# continues the block above"


def _blocks(page: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of each python block; a continuation carries the blocks before it."""
    out: list[tuple[int, str]] = []
    for match in re.finditer(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M):
        line = page.read_text()[: match.start()].count("\n") + 1
        code = match.group(1)
        if code.startswith(CONTINUES):
            assert out, f"{page.name}:{line} continues no block"
            code = out.pop()[1] + "\n" + code
        out.append((line, code))
    return out


CASES = [
    pytest.param(code, id=f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for line, code in _blocks(page)
]


def test_the_pages_have_blocks_and_links_that_resolve():
    assert len(CASES) >= 10
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


@pytest.mark.slow  # each block trains or compiles as the user's would
@pytest.mark.usefixtures("users_backend")  # symnn's default mode, as a user who pastes it gets
@pytest.mark.parametrize("code", CASES)
def test_every_code_block_runs_as_pasted(code, tmp_path, monkeypatch):
    if re.search(r"^import torch|^from torch", code, re.M):
        import_torch()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<doc block>", "exec"), {"__name__": "__doc_block__"})


def test_the_counts_the_docs_state_are_the_suites():
    """Counts that the pages state about the suite, read from the pages and checked against the
    tests that back them, so that neither can drift alone."""
    import test_bad_input
    import test_sklearn_mlp_suite

    text = " ".join(page.read_text() for page in PAGES).replace("\n", " ")
    wrong_calls = int(re.search(r"a table of (\d+) wrong calls", text).group(1))
    assert wrong_calls == len(test_bad_input.CASES)
    passed, left_out = map(int, re.search(r"(\d+) tests pass, (\d+) are left out", text).groups())
    assert left_out == len(test_sklearn_mlp_suite.EXCLUDED)
    assert f"assert passed >= {passed}" in Path(test_sklearn_mlp_suite.__file__).read_text()
