"""Which package modules a bundle needs: its configs' ``lungcad_transforms`` names, followed through the imports.

MONAI's ``monai.bundle`` tooling packages a bundle folder but does not vendor the Python code its configs
import; an exported bundle carries that code in its own ``scripts/``. The modules it needs are those its
configs name (``lungcad_transforms.transforms.LungMaskd`` is found through the lazy name table of
``transforms/__init__.py``: ``transforms/lung/dictionary.py``) and, transitively, every package module those
import (at module level or inside a function; ``if TYPE_CHECKING:`` blocks excluded), plus the
``__init__.py`` files on the way (and, for a package whose ``__init__`` re-exports its subpackages' names,
those subpackages' ``__init__.py``, which it imports). The closure is found by reading the code (``ast``), not by importing it,
so an import inside a function that a trial import would not reach is still found.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

__all__ = ["PACKAGE", "VENDORED", "references_package", "vendor_references", "module_file", "needed_modules"]

# the folder that holds the lungcad_transforms package (the repository root for an editable install)
PACKAGE_ROOT = Path(__file__).resolve().parents[3]

PACKAGE = "lungcad_transforms"
VENDORED = f"scripts.{PACKAGE}"
# a reference to the package as a name of its own: not already vendored, not part of a longer name
_REFERENCE = re.compile(rf"(?<![\w.]){PACKAGE}\b")


def references_package(text: str) -> bool:
    """Whether ``text`` names the package itself (not its vendored copy).

    Examples:
        >>> references_package("$import lungcad_transforms"), references_package("$import scripts.lungcad_transforms")
        (True, False)
    """
    return _REFERENCE.search(text) is not None


def vendor_references(text: str) -> str:
    """Point every ``lungcad_transforms`` reference in ``text`` (code or config) at the vendored copy.

    Examples:
        >>> vendor_references('"$import lungcad_transforms.data"')
        '"$import scripts.lungcad_transforms.data"'
        >>> vendor_references("from lungcad_transforms.data.image_reader import load_image")
        'from scripts.lungcad_transforms.data.image_reader import load_image'
        >>> vendor_references("scripts.lungcad_transforms.data")  # already vendored: unchanged
        'scripts.lungcad_transforms.data'
    """
    return _REFERENCE.sub(VENDORED, text)


def module_file(module: str) -> Path | None:
    """The source file of package module ``module`` (``a.b``: ``a/b/__init__.py`` or ``a/b.py``), or None.

    Examples:
        >>> module_file("lungcad_transforms.utils.atomic").name
        'atomic.py'
    """
    base = PACKAGE_ROOT.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _lazy_table(package: str) -> dict[str, str]:
    """Name -> defining module of a package's lazy ``__init__`` (``_NAMES``; the top level's ``_PUBLIC``)."""
    # importing a package __init__ is cheap (its names load on first use); its table is built with
    # dict.fromkeys(...), which ast.literal_eval cannot read
    module = importlib.import_module(package)
    if package == PACKAGE:
        return {name: f"{PACKAGE}.{target}" for name, target in getattr(module, "_PUBLIC", {}).items()}
    return dict(getattr(module, "_NAMES", {}))


def _modules_for(dotted: str) -> set[str]:
    """The package modules needed to reach ``dotted``: a module, or a name looked up through modules.

    Examples:
        >>> sorted(_modules_for("lungcad_transforms.transforms.LungMaskd"))
        ['lungcad_transforms.transforms', 'lungcad_transforms.transforms.lung', 'lungcad_transforms.transforms.lung.dictionary']
    """
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        module = ".".join(parts[:n])
        path = module_file(module)
        if path is not None:
            break
    else:
        return set()
    needed = {module}
    rest = parts[n:]
    if rest and path.name == "__init__.py":
        target = _lazy_table(module).get(rest[0])
        if target is not None and target != module:
            needed |= _modules_for(f"{target}.{rest[0]}")
    return needed


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _references_in_code(module: str, path: Path) -> set[str]:
    """Dotted package names that module ``module`` imports or reaches by attribute (``lungcad_transforms.x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # annotations-only imports never run, so they need not be exported
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package_parts[: len(package_parts) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute):
            chain = [node.attr]
            value = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                found.add(".".join([value.id, *reversed(chain)]))
    return {ref for ref in found if ref == PACKAGE or ref.startswith(PACKAGE + ".")}


def _eagerly_imported_subpackages(path: Path) -> list[str]:
    """The ``_SUBPACKAGES`` of a package ``__init__`` that builds its names with ``reexported``: that call
    imports every listed subpackage's ``__init__`` when the package is imported."""
    if path.name != "__init__.py":
        return []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = any(
        isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == "reexported"
        for node in ast.walk(tree)
    )
    for node in tree.body if calls else []:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_SUBPACKAGES":
            return [str(s) for s in ast.literal_eval(node.value)]
    return []


def needed_modules(config_texts: list[str]) -> set[str]:
    """Every package module that configs ``config_texts`` (JSON text) use, transitively, with their packages.

    Examples:
        >>> modules = needed_modules(['{"net": {"_target_": "lungcad_transforms.networks.nets.MGICNN"}}'])
        >>> "lungcad_transforms.networks.nets.mgicnn" in modules, "lungcad_transforms.apps.lidc" in modules
        (True, False)
    """
    pending = [PACKAGE]
    for text in config_texts:
        for ref in re.findall(rf"(?<![\w.]){PACKAGE}(?:\.\w+)*", text):
            pending.extend(_modules_for(ref))
    needed: set[str] = set()
    while pending:
        module = pending.pop()
        if module in needed:
            continue
        needed.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:n]) for n in range(1, len(parts)))  # the __init__.py files on the way
        path = module_file(module)
        for ref in _references_in_code(module, path):
            pending.extend(_modules_for(ref))
        pending.extend(f"{module}.{sub}" for sub in _eagerly_imported_subpackages(path))
    return needed
