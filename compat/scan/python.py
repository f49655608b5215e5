"""The Python scanner: one :mod:`ast` pass over a module, in execution order."""

from __future__ import annotations

import ast
from pathlib import Path

from compat.renames import RenameDeclaration
from compat.scan.findings import PYTHON_ATTR, PYTHON_IMPORT, PYTHON_NAME, Finding
from compat.scan.inference import _in_models, _Inference, _member, _module_type, _Scope, _Ty
from compat.scan.literals import _literal_as_written, _node_start, _sql_string_hits
from compat.scan.names import UPSTREAM_MODELS_MODULES, active, scanning
from compat.scan.orm_decl import class_declaration, foreign_key
from compat.scan.positions import _normalise_newlines, _Text


def scan_python(
    source: str,
    path: Path | str = "<python>",
    *,
    decl: RenameDeclaration,
    package: str | None = None,
    models_modules: tuple[str, ...] = UPSTREAM_MODELS_MODULES,
) -> list[Finding]:
    """Scan Python source text for the old names of ``decl``. ``package`` resolves
    relative imports (the package the module is in, e.g. ``catalog.models``).
    Raises SyntaxError."""
    with scanning(decl, models_modules):
        return _scan_python(source, path, package)


def _scan_python(source: str, path: Path | str, package: str | None) -> list[Finding]:
    if not active().mentions.search(source) and not (package and _in_models(package)):
        return []
    text = _Text(_normalise_newlines(source))
    tree = ast.parse(text.text, filename=str(path))
    visitor = _PythonScanner(text, Path(path), package)
    visitor.run(tree)
    return sorted(set(visitor.findings))


_KEYWORD_METHODS = frozenset({"filter_by", "values"})
_ATTR_FUNCS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


class _PythonScanner(_Inference, ast.NodeVisitor):
    """One pass over a module, in execution order, with a scope per function.

    Function bodies are visited after the scope that defines them (that is
    when they run), so they see its final bindings. A name's type is the
    type of the last value bound to it in its scope; anything the inference
    does not recognise binds the name to "unknown", which reports nothing.
    """

    def __init__(self, text: _Text, path: Path, package: str | None):
        self.text = text
        self.path = path
        self.package = package
        self.findings: list[Finding] = []
        self.scope = _Scope(None)
        self.deferred: list[list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Scope]]] = []
        self.not_sql: set[int] = set()  # ids of string nodes that are not code (docstrings…)
        self.local_models: dict[str, dict[str, str]] = {}  # classes mapped onto an old table

    # -- driving ---------------------------------------------------------
    def run(self, tree: ast.Module) -> None:
        self._body(tree.body, self.scope)

    def _body(self, statements: list[ast.stmt], scope: _Scope) -> None:
        outer = self.scope
        self.scope = scope
        self.deferred.append([])
        for statement in statements:
            self.visit(statement)
        pending = self.deferred.pop()
        for function, parent in pending:
            self._function_body(function, parent)
        self.scope = outer

    def _function_body(self, node: ast.FunctionDef | ast.AsyncFunctionDef, parent: _Scope) -> None:
        scope = _Scope(parent)
        args = node.args
        saved, self.scope = self.scope, parent  # annotations are evaluated outside
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            scope.names[arg.arg] = self._annotation_type(arg.annotation)
        for star_arg in (args.vararg, args.kwarg):
            if star_arg is not None:
                scope.names[star_arg.arg] = None
        self.scope = saved
        self._body(node.body, scope)

    # -- findings ----------------------------------------------------------
    def _add(self, offset: int, old: str, new: str, kind: str) -> None:
        line, col = self.text.position(offset)
        self.findings.append(Finding(self.path, line, col, old, new, kind))

    def _add_at(self, lineno: int, byte_col: int, old: str, new: str, kind: str) -> None:
        self._add(self.text.offset(lineno, byte_col), old, new, kind)

    def _model_attr(self, ty: _Ty | None, attr: str, offset: int) -> None:
        if ty is None or ty.kind not in ("class", "instance"):
            return
        new = self.local_models.get(ty.name, active().model_columns.get(ty.name, {})).get(attr)
        if new is not None:
            self._add(offset, f"{ty.name}.{attr}", f"{ty.name}.{new}", PYTHON_ATTR)

    # -- binding -------------------------------------------------------------
    def _bind(self, target: ast.AST, ty: _Ty | None) -> None:
        if isinstance(target, ast.Name):
            self.scope.names[target.id] = ty
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind(element, None)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, None)

    def _bind_unpacked(self, target: ast.AST, value: ast.AST) -> None:
        if (
            isinstance(target, (ast.Tuple, ast.List))
            and isinstance(value, (ast.Tuple, ast.List))
            and len(target.elts) == len(value.elts)
        ):
            for t, v in zip(target.elts, value.elts):
                self._bind_unpacked(t, v)
        else:
            self._bind(target, self._infer(value))

    def _bind_loop_target(self, target: ast.AST, iterable: ast.AST) -> None:
        # for i, f in enumerate(files)
        if (
            isinstance(target, ast.Tuple)
            and len(target.elts) == 2
            and isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "enumerate"
            and iterable.args
        ):
            self._bind(target.elts[0], None)
            self._bind(target.elts[1], self._element(self._infer(iterable.args[0])))
        else:
            self._bind(target, self._element(self._infer(iterable)))

    # -- statements ----------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self._visit_annotation(arg.annotation)
        if node.returns is not None:
            self._visit_annotation(node.returns)
        self.scope.names[node.name] = None
        # The body runs later: visit it once the enclosing function or module is done.
        self.deferred[-1].append((node, self.scope))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        declared = class_declaration(node)
        for where, old, new, kind in declared.hits:
            self._add(self._node_offset(where), old, new, kind)
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)
        scope = _Scope(self.scope, is_class=True)
        outer = self.scope
        self.scope = scope
        for statement in node.body:
            self.visit(statement)
        self.scope = outer
        if declared.old_attributes:  # its old-named attributes are old names too, where used
            self.local_models[node.name] = declared.old_attributes
            self.scope.names[node.name] = _Ty("class", node.name)
        else:
            self.scope.names[node.name] = None

    def visit_Expr(self, node: ast.Expr) -> None:
        # A bare string statement is a docstring or a comment-like note: prose.
        if isinstance(node.value, (ast.Constant, ast.JoinedStr)):
            self.not_sql.add(id(node.value))
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.scope.names[alias.asname] = _module_type(alias.name)
            else:  # import a.b.c binds a
                top = alias.name.split(".")[0]
                self.scope.names[top] = _module_type(top)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = self._absolute(node)
        for alias in node.names:
            if alias.name == "*":
                if module and _in_models(module):
                    for model in active().model_columns:
                        self.scope.names[model] = _Ty("class", model)
                continue
            ty = _member(module, alias.name) if module else None
            if ty is not None and ty.alias is not None:
                self._add_at(alias.lineno, alias.col_offset, alias.name, ty.name, PYTHON_IMPORT)
            self.scope.names[alias.asname or alias.name] = ty

    def _absolute(self, node: ast.ImportFrom) -> str | None:
        if not node.level:
            return node.module
        if self.package is None:
            return None
        parts = self.package.split(".")
        if node.level - 1 > len(parts) - 1:
            return None
        base = parts[: len(parts) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._visit_target(target)
            self._bind_unpacked(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._visit_annotation(node.annotation)
        if node.value is not None:
            self.visit(node.value)
        self._visit_target(node.target)
        ty = self._annotation_type(node.annotation)
        if ty is None and node.value is not None:
            ty = self._infer(node.value)
        self._bind(node.target, ty)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target, self._infer(node.value))

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._visit_target(node.target)
        self._bind_loop_target(node.target, node.iter)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._visit_target(item.optional_vars)
                self._bind(item.optional_vars, None)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.scope.names[node.name] = None
        for statement in node.body:
            self.visit(statement)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._visit_target(target)
            self._bind(target, None)

    def _visit_target(self, target: ast.AST) -> None:
        """Visit the expressions inside an assignment target (``f.x = …``)."""
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            self.visit(target)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._visit_target(element)
        elif isinstance(target, ast.Starred):
            self._visit_target(target.value)

    # -- scopes inside expressions -------------------------------------------------
    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            self.visit(default)
        scope = _Scope(self.scope)
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                scope.names[arg.arg] = None
        outer, self.scope = self.scope, scope
        self.visit(node.body)
        self.scope = outer

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp, results: list[ast.expr]
    ) -> None:
        scope = _Scope(self.scope)
        outer, self.scope = self.scope, scope
        for generator in node.generators:
            self.visit(generator.iter)
            self._bind_loop_target(generator.target, generator.iter)
            for condition in generator.ifs:
                self.visit(condition)
        for result in results:
            self.visit(result)
        self.scope = outer

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    # -- expressions -------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            ty = self.scope.lookup(node.id)
            if ty is not None and ty.kind == "class" and ty.alias == node.id:
                self._add_at(node.lineno, node.col_offset, node.id, ty.name, PYTHON_NAME)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.visit(node.value)
        base = self._infer(node.value)
        if base is None:
            return
        offset = self.text.offset(node.end_lineno or node.lineno, node.end_col_offset or 0)
        offset -= len(node.attr)
        if base.kind == "module" and _in_models(base.name) and node.attr in active().class_aliases:
            self._add(offset, node.attr, active().class_aliases[node.attr], PYTHON_ATTR)
        else:
            self._model_attr(base, node.attr, offset)

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        reference = foreign_key(node)
        if reference is not None:
            where, old, new, kind = reference
            self._add(self._node_offset(where), old, new, kind)
        func = node.func
        target = self._infer(func)
        if target is None and isinstance(func, ast.Attribute) and func.attr in _KEYWORD_METHODS:
            receiver = self._infer(func.value)
            if receiver is not None and receiver.kind == "query":
                target = receiver
        if target is not None and target.kind in ("class", "query"):
            for keyword in node.keywords:
                if keyword.arg is not None:
                    offset = self.text.offset(keyword.lineno, keyword.col_offset)
                    self._model_attr(_Ty("class", target.name), keyword.arg, offset)
        if (
            isinstance(func, ast.Name)
            and func.id in _ATTR_FUNCS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            literal = self._literal(node.args[1])
            offset = literal[1][0] if literal and literal[1] else self._node_offset(node.args[1])
            self._model_attr(self._infer(node.args[0]), node.args[1].value, offset)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        if id(node) not in self.not_sql:
            self._scan_string(node)
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value.value)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.not_sql:
            self._scan_string(node)

    # -- annotations -------------------------------------------------------------
    def _visit_annotation(self, node: ast.AST) -> None:
        for child in ast.walk(node):
            if isinstance(child, ast.Constant) and isinstance(child.value, str):
                self.not_sql.add(id(child))
                self._string_annotation(child)
        self.visit(node)

    def _string_annotation(self, node: ast.Constant) -> None:
        value = node.value
        if not isinstance(value, str):
            return  # only string annotations hold names to parse
        try:
            inner = ast.parse(value.strip(), mode="eval")
        except SyntaxError:
            return
        literal = self._literal(node)
        lead = len(value) - len(value.lstrip())
        for name in ast.walk(inner):
            if isinstance(name, ast.Name):
                ty = self.scope.lookup(name.id)
                if ty is not None and ty.kind == "class" and ty.alias == name.id:
                    at = lead + name.col_offset if name.lineno == 1 else 0
                    offset = literal[1][at] if literal and at < len(literal[1]) else self._node_offset(node)
                    self._add(offset, name.id, ty.name, PYTHON_NAME)

    # -- SQL in string literals ---------------------------------------------------
    def _node_offset(self, node: ast.expr) -> int:
        return _node_start(self.text, node)

    def _literal(self, node: ast.Constant | ast.JoinedStr) -> tuple[str, list[int]] | None:
        return _literal_as_written(self.text, node)

    def _scan_string(self, node: ast.Constant | ast.JoinedStr) -> None:
        for offset, old, new, kind in _sql_string_hits(self.text, node):
            self._add(offset, old, new, kind)
