"""The check script CI runs beside the tests: format, lint, types, layers, module size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PRODUCT = ["bot", "handlers", "services", "sandbox"]
MAX_LINES = 500


def run(name: str, *cmd: str) -> bool:
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    ok = subprocess.run(cmd, cwd=ROOT, check=False).returncode == 0
    print(f"== {name}: {'ok' if ok else 'FAILED'}", flush=True)
    return ok


def module_sizes() -> bool:
    print("== module size: no module over 500 lines", flush=True)
    too_big = []
    for package in [*PRODUCT, "tests", "bench", "scripts"]:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                too_big.append(f"{path.relative_to(ROOT)}: {lines} lines")
    for line in too_big:
        print(f"  {line}")
    print(f"== module size: {'ok' if not too_big else 'FAILED'}", flush=True)
    return not too_big


def import_cycles() -> bool:
    """No module imports itself back through others (grimp builds the graph import-linter uses)."""
    import grimp

    print("== import cycles: none among the product's modules", flush=True)
    graph = grimp.build_graph(*PRODUCT)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    cycles = _cycles(edges)
    for cycle in cycles:
        print("  " + " -> ".join(cycle))
    print(f"== import cycles: {'ok' if not cycles else 'FAILED'}", flush=True)
    return not cycles


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    results = [
        run("ruff format", str(BIN / "ruff"), "format", "--check", "."),
        run("ruff check", str(BIN / "ruff"), "check", "."),
        run("mypy", str(BIN / "mypy"), "--strict", *PRODUCT),
        run("import-linter", str(BIN / "lint-imports")),
        import_cycles(),
        module_sizes(),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
