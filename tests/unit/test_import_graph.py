"""No import cycle inside any package of boxoffice (docs/service-shape.md), TYPE_CHECKING imports included.

import-linter's layers contracts (pyproject.toml) order the modules each one names; a module a contract
does not name (a new one, or one left out) could still close a loop. This checks every module of every
package: the strongly connected components of its import graph are single modules. Before the service
shape (af85625) it found 34 cycles (booking 4, catalog 4, identity 3, payments 3, tickets 3, web 17).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp
import pytest

GRAPH = grimp.build_graph("boxoffice", include_external_packages=False)
PACKAGES = sorted({m.split(".")[1] for m in GRAPH.modules if m.count(".") >= 1 and GRAPH.find_children(m)})


def loops(modules: Iterable[str], imports: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (each holds at least one cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(imports[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def package_imports(package: str) -> dict[str, set[str]]:
    prefix = f"boxoffice.{package}"
    modules = {m for m in GRAPH.modules if m == prefix or m.startswith(prefix + ".")}
    return {m: GRAPH.find_modules_directly_imported_by(m) & modules for m in modules}


def test_the_check_finds_a_cycle() -> None:
    imports = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert loops(imports, imports) == [["a", "b", "c"]]


def test_every_service_is_checked() -> None:
    assert {"booking", "payments", "identity", "catalog", "tickets", "web", "platform"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_the_package(package: str) -> None:
    imports = package_imports(package)
    assert len(imports) > 1
    assert loops(imports, imports) == []


SERVICES = [p for p in PACKAGES if p != "platform"]


@pytest.mark.parametrize("package", SERVICES)
def test_routes_reach_the_database_only_through_handlers(package: str) -> None:
    """``api.py`` parses, calls a handler and maps errors (docs/service-shape.md): the layers contracts let
    a higher layer import any lower one, so this checks that no api module imports the service's store."""
    prefix = f"boxoffice.{package}."
    storage = {m for m in GRAPH.modules if m.startswith(prefix) and m.split(".")[2] in ("store", "tables")}
    for module in GRAPH.modules:
        if module.startswith(prefix) and module.split(".")[2].startswith("api"):
            assert not GRAPH.find_modules_directly_imported_by(module) & storage, module
