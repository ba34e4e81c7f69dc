"""How the code is laid out: the project's modules import no circle (tokens.services and
workspaces.services least of all), and the plan rule lives in workspaces/permissions.py only."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["config", "workspaces", "tokens"]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path, packages) -> dict[str, Path]:
    """Every module of the packages, by dotted name (migrations left out)."""
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "migrations" not in path.relative_to(root).parts
    }


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that `name` imports, anywhere in it (functions included).

    `from pkg import thing` counts as importing `pkg.thing` when that is a module, else `pkg`.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    return {module for module in found if module in modules and module != name}


def import_graph(root: Path, packages) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def two_cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets
                   if a in graph.get(b, ())})


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT, PACKAGES)


def test_the_graph_reads_every_kind_of_import(tmp_path):
    """The reader itself, on a small package: absolute, from-, relative and in-function imports
    all count, and so does a circle between them."""
    for path, text in {
        "app/__init__.py": "",
        "app/models.py": "import app.util\n",
        "app/util.py": "",
        "app/views.py": "from . import models\nfrom .util import thing\n",
        "app/services.py": "def f():\n    from other import services\n",
        "other/__init__.py": "",
        "other/services.py": "from app import services\nimport json\n",
    }.items():
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(text)
    graph = import_graph(tmp_path, ["app", "other"])
    assert graph["app.models"] == {"app.util"}
    assert graph["app.views"] == {"app.models", "app.util"}
    assert graph["app.services"] == {"other.services"}
    assert two_cycles(graph) == [("app.services", "other.services")]


def test_it_reads_the_project(graph):
    assert {"config.settings", "workspaces.services", "tokens.services", "tokens.api"} <= set(graph)
    assert not any(".migrations" in name for name in graph)
    assert any(graph.values())


def test_no_two_modules_import_each_other(graph):
    assert two_cycles(graph) == []


def test_the_two_service_modules_do_not_import_each_other(graph):
    both_ways = ("tokens.services" in graph["workspaces.services"]
                 and "workspaces.services" in graph["tokens.services"])
    assert not both_ways


def test_the_plan_rule_lives_in_permissions_only():
    for folder in ["config", "workspaces", "tokens", "templates"]:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".html", ".txt"}:
                assert "supports_access_tokens" not in path.read_text(), path


PLAN_WORDS = {"business", "enterprise", "edu"}


def names_a_plan(node: ast.AST) -> bool:
    """`Plan.BUSINESS` and the like, a plan's value, or the rule's own set of plans."""
    for inner in ast.walk(node):
        if (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name)
                and inner.value.id == "Plan" and inner.attr.lower() in PLAN_WORDS):
            return True
        if isinstance(inner, ast.Constant) and inner.value in PLAN_WORDS:
            return True
        if isinstance(inner, (ast.Name, ast.Attribute)) and "TOKEN_PLANS" in (
                getattr(inner, "id", None), getattr(inner, "attr", None)):
            return True
    return False


def test_no_module_but_permissions_decides_by_plan():
    """Which plans allow access tokens is said once: a test of a plan against a particular plan
    anywhere else would be a second copy of the rule."""
    deciding = []
    for name, path in project_modules(ROOT, PACKAGES).items():
        if name == "workspaces.permissions":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Compare) and names_a_plan(node):
                deciding.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert deciding == []


def test_the_plan_check_tells_a_rule_from_a_validation():
    def compare(source):
        return ast.parse(source, mode="eval").body

    assert names_a_plan(compare("workspace.plan in (Plan.BUSINESS, Plan.ENTERPRISE)"))
    assert names_a_plan(compare('plan != "edu"'))
    assert names_a_plan(compare("plan in permissions.TOKEN_PLANS"))
    assert not names_a_plan(compare("plan not in Plan.values"))
