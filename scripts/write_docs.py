"""Write every generated part of the README and the docs site from the files that measured it or the code it
describes: the blocks between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` markers (results tables,
`scripts/docgen/results.py`) and the reference pages (`scripts/docgen/reference.py`).

Run `python scripts/write_docs.py` after a run is recorded or the code changes; `--check` exits 1 naming the files
that differ from what it writes (the test suite runs it), so no figure and no reference page can drift.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]

from docgen import reference, results  # noqa: E402

BLOCK = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)
BLOCKS: dict[str, Callable[[], str]] = {
    "default-run": results.default_run,
    "ledger": results.ledger,
    "profile-runs": results.profile_runs,
    "ifeval-benchmark": results.ifeval_benchmark,
}


def block(name: str) -> str:
    if name.startswith("bench-"):
        return results.bench(name.removeprefix("bench-"))
    if name not in BLOCKS:
        raise SystemExit(f"error: unknown generated block {name!r}; known: {', '.join(BLOCKS)}, bench-<script>")
    return BLOCKS[name]()


def with_blocks(text: str) -> str:
    return BLOCK.sub(lambda match: f"{match[1]}{block(match['name'])}\n{match[4]}", text)


def expected() -> dict[Path, str]:
    """Every generated file's full text: documents with blocks filled, and whole reference pages."""
    pages = {ROOT / "docs" / path: text for path, text in reference.pages().items()}
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    written = {path: with_blocks(path.read_text(encoding="utf-8")) for path in documents if path not in pages}
    return written | pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from what this writes")
    args = parser.parse_args()
    stale = []
    for path, text in expected().items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        names = ", ".join(map(str, stale))
        sys.exit(f"error: {names} differ from what scripts/write_docs.py writes; run it and commit the result")
    print(f"{'stale' if args.check else 'written'}: {len(stale)} file(s)")


if __name__ == "__main__":
    main()
