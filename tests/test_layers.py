"""Layer rules of DESIGN.md, checked on the source: every ``import`` in ``src/limner`` (deferred ones too).

Why from the AST and not from ``sys.modules``: an import inside a function is still a dependency of
its layer, and reading the source needs no torch. A rule lists a layer and the packages it must not
import; a violation names the file, the line and the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import limner

SOURCE = Path(limner.__file__).parent


@dataclass(frozen=True)
class Rule:
    layers: tuple[str, ...]
    """Sub-packages or modules of ``limner`` the rule is about (``engines``, ``styles``)."""
    forbidden: tuple[str, ...]
    """Modules (and everything under them) those layers must not import."""


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = SOURCE.parent) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import in ``path`` (a file under ``root``), relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # ``from limner import services`` imports limner.services
                yield node.lineno, f"{module}.{alias.name}"


def _files(layer: str) -> list[Path]:
    target = SOURCE / layer
    if target.is_dir():
        return sorted(target.rglob("*.py"))
    return [target.with_suffix(".py")]


def violations(rule: Rule) -> list[str]:
    found = []
    for layer in rule.layers:
        files = _files(layer)
        assert files, f"no source for layer {layer!r}"
        assert all(path.is_file() for path in files), f"no source for layer {layer!r}"
        for path in files:
            for line, module in _imports(path):
                if any(module == banned or module.startswith(banned + ".") for banned in rule.forbidden):
                    found.append(f"{path.relative_to(SOURCE.parent)}:{line} imports {module}")
    return sorted(set(found))


NO_SERVICES_BELOW = Rule(("engines", "finetune", "prompts"), ("limner.services", "limner.db"))
CORE_IMPORTS_NOTHING_ABOVE = Rule(
    ("core",), ("limner.engines", "limner.services", "limner.db", "limner.api", "limner.cli", "limner.ui")
)
HELPERS_IMPORT_NO_ENGINE = Rule(
    ("styles", "config", "http_client", "prompts"), ("limner.engines", "limner.services", "limner.db")
)
"""Prompts and remote engines share ``http_client``; neither reaches into the other, nor into an engine."""
STUDIO_TALKS_REST_ONLY = Rule(("ui",), ("limner.engines", "limner.services", "limner.db", "limner.api"))
CLI_WITHOUT_LOCAL_ENGINE = Rule(("cli",), ("limner.engines.local",))
API_WITHOUT_LOCAL_ENGINE = Rule(("api",), ("limner.engines.local",))


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(NO_SERVICES_BELOW, id="engines-finetune-prompts-no-services-db"),
        pytest.param(CORE_IMPORTS_NOTHING_ABOVE, id="core-imports-nothing-above"),
        pytest.param(HELPERS_IMPORT_NO_ENGINE, id="styles-config-http-prompts-no-engines"),
        pytest.param(STUDIO_TALKS_REST_ONLY, id="ui-rest-only"),
        pytest.param(CLI_WITHOUT_LOCAL_ENGINE, id="cli-no-local-engine"),
        pytest.param(API_WITHOUT_LOCAL_ENGINE, id="api-no-local-engine"),
    ],
)
def test_layer_rule(rule: Rule) -> None:
    assert violations(rule) == []


def test_the_checker_sees_deferred_relative_and_from_imports(tmp_path: Path) -> None:
    """A checker that finds nothing proves nothing: it must see each way of writing an import."""
    package = tmp_path / "limner" / "engines"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    source = package / "leak.py"
    source.write_text(
        "import limner.db.models\n"
        "from limner import services\n"
        "from ..services.models import ModelRegistry\n"
        "def later():\n"
        "    from limner.services.gallery import Gallery\n"
    )
    found = [module for _, module in _imports(source, tmp_path)]
    assert "limner.db.models" in found
    assert "limner.services" in found
    assert "limner.services.models" in found
    assert "limner.services.gallery" in found
