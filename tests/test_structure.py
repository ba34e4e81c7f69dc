"""How the code is laid out (docs/architecture.md): the layers, no circle of imports of any
length, a core that knows no feature, one door from workspaces into tokens, and the plan rule in
workspaces/permissions.py only."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["config", "console", "workspaces", "tokens"]


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


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of imports, of any length: the strongly connected components with more than
    one module (Tarjan's algorithm), and modules that import themselves."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


# The layers, lowest first: a module may import its own layer and those below, never above.
LAYERS = ["core", "models", "permissions", "selectors", "services", "web", "config"]
LAYER_OF_NAME = {
    "models": "models", "codec": "models", "ipranges": "models", "apps": "models",
    "permissions": "permissions",
    "selectors": "selectors", "stats": "selectors", "authn": "selectors", "oidc": "selectors",
    "services": "services", "audit": "services", "interface": "services",
}


def layer_of(module: str) -> str:
    """core: console; config: config; in an app, by the module's name (views, the API and the
    gateway, handlers, forms, access, layout, urls, admin, commands: web)."""
    app, _, rest = module.partition(".")
    if app == "console":
        return "core"
    if app == "config":
        return "config"
    return LAYER_OF_NAME.get(rest.split(".")[0], "web")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
                  for a, targets in graph.items() for b in targets
                  if LAYERS.index(layer_of(b)) > LAYERS.index(layer_of(a)))


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT, PACKAGES)


def test_the_graph_reads_every_kind_of_import(tmp_path):
    """The reader itself, on a small package: absolute, from-, relative and in-function imports
    all count, and so does a circle between them, of any length."""
    for path, text in {
        "app/__init__.py": "",
        "app/models.py": "import app.util\n",
        "app/util.py": "",
        "app/views.py": "from . import models\nfrom .util import thing\n",
        "app/services.py": "def f():\n    from other import services\n",
        "other/__init__.py": "",
        "other/services.py": "from app import views\nimport json\n",
        "app/selectors.py": "from . import views\n",
    }.items():
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(text)
    graph = import_graph(tmp_path, ["app", "other"])
    assert graph["app.models"] == {"app.util"}
    assert graph["app.views"] == {"app.models", "app.util"}
    assert graph["app.services"] == {"other.services"}
    graph["app.views"].add("app.services")  # a circle of three
    assert cycles(graph) == [["app.services", "app.views", "other.services"]]
    assert upward_imports(graph) == [
        "app.models (models) imports app.util (web)",
        "app.selectors (selectors) imports app.views (web)",
        "other.services (services) imports app.views (web)",
    ]


def test_it_reads_the_project(graph):
    assert {"config.settings", "console.errors", "workspaces.services.members",
            "tokens.services.lifecycle", "tokens.api"} <= set(graph)
    assert not any(".migrations" in name for name in graph)
    assert any(graph.values())


def test_no_modules_import_each_other_in_a_circle(graph):
    assert cycles(graph) == []


def test_no_module_imports_a_layer_above_its_own(graph):
    """views/api -> services -> selectors -> permissions -> models -> core."""
    assert upward_imports(graph) == []


def test_the_core_imports_no_feature(graph):
    assert sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets
                  if a.startswith("console") and not b.startswith("console")) == []


def test_workspaces_reach_tokens_through_one_door(graph):
    """Tokens build on workspaces; the one arrow back is tokens/interface.py (documented in
    docs/architecture.md)."""
    doors = {b for a, targets in graph.items() for b in targets
             if a.startswith("workspaces") and b.startswith("tokens")}
    assert doors == {"tokens.interface"}


def test_the_plan_rule_lives_in_permissions_only():
    """No template or SQL statement decides by a plan, and no statement names a plan or a role:
    the run start's SQL takes them as parameters from the policy's constants."""
    for path in sorted((ROOT / "templates").rglob("*.html")):
        assert not re.search(r"\bplan\s*(==|!=|\bin\b)", path.read_text()), path
    for path in sorted(ROOT.glob("*/sql/*.sql")):
        text = path.read_text().lower()
        for word in ("'business'", "'enterprise'", "'edu'", "'owner'", "'admin'", "'member'"):
            assert word not in text, (path, word)


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
