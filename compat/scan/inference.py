"""The light, flow-ordered type inference of the Python scanner: what a name or
expression is (a models module, a model class, an instance, a query…)."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from compat.scan.names import active


def _in_models(module: str) -> bool:
    """A models module (the declaration's, the upstream's ``models``) or a submodule."""
    return any(module == m or module.startswith(m + ".") for m in active().models_modules)


def _module_type(module: str) -> _Ty | None:
    """A module on the way to the models (``catalog``) or inside them."""
    if _in_models(module) or any(m.startswith(module + ".") for m in active().models_modules):
        return _Ty("module", module)
    return None


@dataclass(frozen=True)
class _Ty:
    """What the light inference knows about a value."""

    kind: str  # module | class | instance | many (iterable of instances) | query | result
    name: str  # dotted module name, or the v2 model class name
    alias: str | None = None  # the deprecated class name it was reached through


def _member(module: str, name: str) -> _Ty | None:
    """``module.name`` for the catalog packages: a model class, or a module."""
    if not _in_models(module):
        return _module_type(f"{module}.{name}")
    if name in active().model_columns:
        return _Ty("class", name)
    if name in active().class_aliases:
        return _Ty("class", active().class_aliases[name], alias=name)
    if module in active().models_modules and name.islower():
        return _Ty("module", f"{module}.{name}")
    return None


class _Scope:
    def __init__(self, parent: _Scope | None, is_class: bool = False):
        self.parent = parent
        self.is_class = is_class
        self.names: dict[str, _Ty | None] = {}

    def lookup(self, name: str) -> _Ty | None:
        scope: _Scope | None = self
        first = True
        while scope is not None:
            # a class body's names are not visible in its methods
            if (first or not scope.is_class) and name in scope.names:
                return scope.names[name]
            first = False
            scope = scope.parent
        return None


# Methods of a Query / Select / Update … that return the same statement.
_CHAIN = frozenset(
    {
        "filter",
        "filter_by",
        "where",
        "order_by",
        "group_by",
        "having",
        "limit",
        "offset",
        "join",
        "outerjoin",
        "options",
        "distinct",
        "execution_options",
        "values",
        "returning",
        "select_from",
        "params",
        "with_for_update",
        "yield_per",
        "populate_existing",
        "correlate",
        "slice",
    }
)
_ONE = frozenset({"first", "one", "one_or_none", "scalar", "scalar_one", "scalar_one_or_none", "get", "pop"})
_STATEMENT_FUNCS = frozenset({"query", "select", "update", "insert", "delete"})
_SEQUENCE_FUNCS = frozenset({"list", "sorted", "tuple", "reversed", "set", "frozenset"})
_CONTAINERS = frozenset(
    {
        "list",
        "List",
        "Sequence",
        "MutableSequence",
        "Iterable",
        "Iterator",
        "Collection",
        "set",
        "Set",
        "frozenset",
        "FrozenSet",
        "AbstractSet",
        "tuple",
        "Tuple",
        "Generator",
        "AsyncIterator",
        "AsyncIterable",
        "AsyncGenerator",
        "Reversible",
    }
)


class _Inference:
    """The inference half of the Python scanner (a base of ``_PythonScanner``):
    the type of an expression, looked up in :attr:`scope`, the scope the
    scanner is in at that point of the module."""

    scope: _Scope

    @staticmethod
    def _element(ty: _Ty | None) -> _Ty | None:
        if ty is not None and ty.kind in ("many", "query"):
            return _Ty("instance", ty.name)
        return None

    # -- annotations -------------------------------------------------------------
    def _annotation_type(self, node: ast.AST | None) -> _Ty | None:
        """The type of a value annotated so: instance, class (``type[M]``) or many."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                return self._annotation_type(ast.parse(node.value.strip(), mode="eval").body)
            except SyntaxError:
                return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._optional(
                self._annotation_type(node.left), self._annotation_type(node.right), node.left, node.right
            )
        if isinstance(node, ast.Subscript):
            outer = (
                node.value.id
                if isinstance(node.value, ast.Name)
                else (node.value.attr if isinstance(node.value, ast.Attribute) else "")
            )
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if not args:  # Tuple[()]
                return None
            if outer in ("Optional", "Annotated"):
                return self._annotation_type(args[0])
            if outer == "Union" and len(args) == 2:
                return self._optional(
                    self._annotation_type(args[0]), self._annotation_type(args[1]), args[0], args[1]
                )
            inner = self._annotation_type(args[0])
            if outer in ("type", "Type") and inner is not None and inner.kind == "instance":
                return _Ty("class", inner.name)
            if outer in _CONTAINERS and inner is not None and inner.kind == "instance":
                return _Ty("many", inner.name)
            return None
        ty = self._infer(node)
        if ty is not None and ty.kind == "class":
            return _Ty("instance", ty.name)
        return None

    @staticmethod
    def _optional(a: _Ty | None, b: _Ty | None, left: ast.AST, right: ast.AST) -> _Ty | None:
        def is_none(n: ast.AST) -> bool:
            return isinstance(n, ast.Constant) and n.value is None

        if a is not None and is_none(right):
            return a
        if b is not None and is_none(left):
            return b
        return a if a == b else None

    # -- inference ---------------------------------------------------------------
    def _infer(self, node: ast.AST) -> _Ty | None:
        if isinstance(node, ast.Name):
            return self.scope.lookup(node.id)
        if isinstance(node, ast.Attribute):
            base = self._infer(node.value)
            if base is not None and base.kind == "module":
                return _member(base.name, node.attr)
            return None
        if isinstance(node, ast.Call):
            return self._infer_call(node)
        if isinstance(node, ast.Subscript):
            base = self._infer(node.value)
            if base is not None and base.kind == "many":
                return base if isinstance(node.slice, ast.Slice) else _Ty("instance", base.name)
            return None
        if isinstance(node, (ast.NamedExpr, ast.Await)):
            return self._infer(node.value)
        if isinstance(node, ast.IfExp):
            return self._same(node.body, node.orelse)
        if isinstance(node, ast.BoolOp):
            return self._same(*node.values)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and node.elts:
            element = self._same(*node.elts)
            if element is not None and element.kind == "instance":
                return _Ty("many", element.name)
        return None

    def _same(self, *nodes: ast.AST) -> _Ty | None:
        types = {self._infer(n) for n in nodes}
        return types.pop() if len(types) == 1 else None

    def _infer_call(self, node: ast.Call) -> _Ty | None:
        func = node.func
        called = self._infer(func)
        if called is not None and called.kind == "class":
            return _Ty("instance", called.name)  # the constructor
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        first = self._infer(node.args[0]) if node.args else None
        if isinstance(func, ast.Attribute):
            receiver = self._infer(func.value)
            if receiver is not None:
                model = receiver.name
                if receiver.kind == "query":
                    if name in _CHAIN:
                        return receiver
                    if name == "all":
                        return _Ty("many", model)
                    if name in _ONE:
                        return _Ty("instance", model)
                elif receiver.kind == "many":
                    if name in ("all", "fetchall", "unique", "copy"):
                        return receiver
                    if name in _ONE:
                        return _Ty("instance", model)
                elif receiver.kind == "result":
                    if name == "scalars":
                        return _Ty("many", model)
                    if name in ("scalar", "scalar_one", "scalar_one_or_none"):
                        return _Ty("instance", model)
                return None
        if first is None:
            return None
        if first.kind == "class":
            if name in _STATEMENT_FUNCS and len(node.args) == 1:
                return _Ty("query", first.name)  # session.query(M), select(M), update(M)…
            if name == "get" and len(node.args) >= 2:
                return _Ty("instance", first.name)  # session.get(M, pk)
        if first.kind == "query":
            if name == "scalars":
                return _Ty("many", first.name)
            if name == "scalar":
                return _Ty("instance", first.name)
            if name == "execute":
                return _Ty("result", first.name)
        if name == "merge" and first.kind == "instance":
            return first
        if isinstance(func, ast.Name) and name in _SEQUENCE_FUNCS and first.kind in ("many", "query"):
            return _Ty("many", first.name)
        return None
