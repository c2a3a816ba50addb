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


def main() -> int:
    results = [
        run("ruff format", str(BIN / "ruff"), "format", "--check", "."),
        run("ruff check", str(BIN / "ruff"), "check", "."),
        run("mypy", str(BIN / "mypy"), "--strict", *PRODUCT),
        run("import-linter", str(BIN / "lint-imports")),
        module_sizes(),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
