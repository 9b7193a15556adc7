"""What a restricted user's statement reads, as the engine itself parses it, and whether their role names it.

chDB has no users, so this server decides what a reader or an analyst may run. A row filter
(`additional_table_filters`) applies only where a query names a filtered table; table functions
(`merge`, `mergeTreeIndex`, `file`, `url`, `remote`, …), dictionaries, materialized views and
system tables (`system.processes` shows everyone's queries) read around it. So a restricted user
may read only the LabelPulse tables and views their role names (access.policy.READABLE), a few
system tables that hold no data, and table functions that generate rows.

What a statement reads is asked of the engine, never guessed from the SQL text:

1. `formatQuery(…)` parses it (the text travels as a bound parameter): exactly one statement, in
   the engine's canonical form. That canonical text is what then runs, so what was checked is
   what runs.
2. `EXPLAIN AST` names the kind of statement; only SELECT (with UNION, INTERSECT, EXCEPT),
   DESCRIBE and SHOW TABLES may run. Writes get ClickHouse's READONLY error.
3. `EXPLAIN QUERY TREE run_passes = 0` gives the parsed query tree: every table and table
   function in every FROM, JOIN, subquery, CTE and `IN table`, and every function called. It is
   the tree before analysis on purpose: analysis already runs scalar subqueries and reads files
   to infer table functions' schemas.

The tree is read as text, in which the engine prints names as they are. Names that need quoting
(anything but letters, digits and `_`) could pose as lines of the tree, so restricted users'
statements may not use them; LabelPulse's schema has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from embedded_clickhouse.errors import ACCESS_DENIED, READONLY, SYNTAX_ERROR, ClickHouseError

# System tables that hold no data of anyone: clickhouse-connect reads system.settings to connect.
HARMLESS_SYSTEM_TABLES = frozenset(
    {
        *("one", "numbers", "numbers_mt", "zeros", "zeros_mt", "settings", "functions", "table_functions"),
        *("formats", "data_type_families", "aggregate_function_combinators", "time_zones", "collations"),
    }
)
# Table functions that make up rows rather than read them (compared in lower case).
GENERATORS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generateseries", "generate_series"})
# Functions that read tables, dictionaries or files by name, past every filter (lower case; `dict…`
# covers dictGet and all its variants, dictHas, dictIsIn, …).
_READING_FUNCTIONS = frozenset({"joinget", "joingetornull", "file", "hascolumnintable", "catboostevaluate"})
_IN_FUNCTIONS = frozenset(
    {"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin", "globalnotnullin"}
)
# Statements that write: refused as ClickHouse refuses them in readonly mode.
_WRITES = frozenset(
    {
        *("InsertQuery", "CreateQuery", "DropQuery", "TruncateQuery", "AlterQuery", "RenameQuery"),
        *("OptimizeQuery", "DeleteQuery", "UpdateQuery", "UndropQuery", "CreateFunctionQuery"),
        "DropFunctionQuery",
    }
)
_TABLE_POSITIONS = frozenset({"JOIN TREE", "TABLE EXPRESSION", "LEFT TABLE EXPRESSION", "RIGHT TABLE EXPRESSION"})
_QUALIFIED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'", re.DOTALL)
_QUOTED_NAME = re.compile(r"`((?:[^`\\]|\\.)*)`", re.DOTALL)
_IDENTIFIER_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):\s*Identifier\s*\}")
_NODE = re.compile(r"(?P<indent> *)(?P<kind>[A-Z_]+(?: [A-Z_]+)*) id: \d+(?:, (?P<fields>.*))?")
_OTHER_LINE = re.compile(r"(?P<indent> *)(?P<kind>\S.*?)\s*")


@dataclass(frozen=True)
class Readable:
    """What a role may read: tables and views (parameterized ones too) of one database."""

    database: str
    tables: frozenset[str]


@dataclass(frozen=True)
class Checked:
    """A statement that may run: its canonical text, and the FORMAT its text named (None if none)."""

    sql: str
    fmt: str | None


@dataclass
class _Node:
    kind: str  # a node (QUERY, IDENTIFIER, …) or a section of its parent (JOIN TREE, ARGUMENTS, …)
    fields: dict[str, str]
    is_node: bool
    children: list[_Node] = field(default_factory=list)

    def section(self, name: str) -> _Node | None:
        return next((child for child in self.children if not child.is_node and child.kind == name), None)


class _Denied(Exception):
    """What the statement reads that the role does not name."""


def check(
    connection: Any, sql: str, params: dict[str, str], user: str, role: str, readable: Readable, database: str
) -> Checked:
    """The statement `user` may run in place of `sql`, or ClickHouse's ACCESS_DENIED (or READONLY) error.

    `database` is the one unqualified names resolve in (the request's); `connection` runs the checks."""
    canonical = _canonical(connection, sql)
    lines = canonical.rstrip("\n").split("\n")
    if any(line.startswith("INTO OUTFILE") for line in lines):
        raise _denied(user, role, readable, "INTO OUTFILE (writing files on the server)")
    fmt = next((line.split(None, 1)[1].strip() for line in lines if line.startswith("FORMAT ")), None)
    statement = "\n".join(line for line in lines if not line.startswith("FORMAT "))
    try:
        _plain_names_only(statement, params)
        kind, ast = _kind(connection, statement, params)
        if kind == "SelectWithUnionQuery":
            _check_reads(connection, statement, params, readable, database)
        elif kind == "DescribeQuery" and statement.startswith("DESCRIBE TABLE"):
            described = statement.removeprefix("DESCRIBE TABLE").lstrip()
            _check_reads(connection, f"SELECT * FROM {described}", params, readable, database)
        elif kind == "ShowTables":
            shown = [line.split()[1] for line in ast[1:] if line.split()[:1] == ["Identifier"]]
            if any(name != database for name in shown):
                raise _Denied(f"the tables of database {shown[0]}")
        elif kind in _WRITES:
            raise ClickHouseError.ours(READONLY, f"{user}: Cannot execute query in readonly mode")
        else:
            raise _Denied(f"`{lines[0][:60]}`: only SELECT, DESCRIBE and SHOW TABLES may run")
    except _Denied as denied:
        raise _denied(user, role, readable, str(denied)) from None
    return Checked(statement, fmt)


def _denied(user: str, role: str, readable: Readable, what: str) -> ClickHouseError:
    article = "An" if role[:1] in "aeiou" else "A"
    return ClickHouseError.ours(
        ACCESS_DENIED,
        f"{user}: Not enough privileges. {article} {role} may read only LabelPulse's tables and views in "
        f"{readable.database} (and system tables without data), not {what}",
    )


def _canonical(connection: Any, sql: str) -> str:
    """The statement in the engine's canonical form; the engine's error if it is not exactly one."""
    try:
        result = connection.query("SELECT formatQuery({sql:String})", "TSVRaw", params={"sql": _escaped(sql)})
    except Exception as exc:
        error = ClickHouseError.from_engine(exc)
        # The engine's message names our wrapper ("In scope SELECT formatQuery(…)"): not the user's SQL.
        message = str(error).split(": In scope SELECT formatQuery(", 1)[0].rstrip()
        raise ClickHouseError(error.code or SYNTAX_ERROR[0], error.name or SYNTAX_ERROR[1], message) from exc
    return bytes(result.bytes()).decode()


def _escaped(value: str) -> str:
    """A query parameter value as the engine reads it (escaped like TabSeparated)."""
    return value.translate({ord("\\"): "\\\\", ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r", 0: "\\0"})


def _plain_names_only(statement: str, params: dict[str, str]) -> None:
    """Refuse names that need quoting: the query tree prints names as they are (see the module)."""
    outside_strings = _STRING_LITERAL.sub("''", statement)
    # (`db.view`(…) comes back quoted as one name: a qualified parameterized view)
    quoted = [name for name in _QUOTED_NAME.findall(outside_strings) if not _QUALIFIED_NAME.fullmatch(name)]
    if quoted or '"' in outside_strings:
        raise _Denied(f"the name `{quoted[0] if quoted else '…'}`: names of letters, digits and _ only")
    for name in _IDENTIFIER_PARAMETER.findall(outside_strings):
        if not _QUALIFIED_NAME.fullmatch(params.get(name, "")):
            raise _Denied(f"the Identifier parameter {name}: names of letters, digits and _ only")


def _kind(connection: Any, statement: str, params: dict[str, str]) -> tuple[str, list[str]]:
    ast = _explain(connection, f"EXPLAIN AST {statement}", params)
    return (ast[0].split()[0] if ast and ast[0].strip() else ""), ast


def _explain(connection: Any, sql: str, params: dict[str, str]) -> list[str]:
    try:
        return bytes(connection.query(sql, "TSVRaw", params=params).bytes()).decode().rstrip("\n").split("\n")
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc


def _check_reads(connection: Any, select: str, params: dict[str, str], readable: Readable, database: str) -> None:
    tree = _tree(_explain(connection, f"EXPLAIN QUERY TREE run_passes = 0 {select}", params))
    functions: set[str] = set()
    _walk(tree, readable, database, frozenset(), functions)
    for name in sorted(functions):
        lowered = name.lower()
        if lowered.startswith("dict") or lowered in _READING_FUNCTIONS:
            raise _Denied(f"the function {name} (it reads by name, around every filter)")
    if functions:  # functions an admin defined may read anything
        listed = ", ".join(f"'{name}'" for name in sorted(functions))
        defined = _explain(
            connection, f"SELECT name FROM system.functions WHERE origin != 'System' AND name IN ({listed})", {}
        )
        if defined and defined[0]:
            raise _Denied(f"the user-defined function {defined[0]}")


def _tree(lines: list[str]) -> _Node:
    """The dump of EXPLAIN QUERY TREE as nodes and sections, nested by indentation."""
    root = _Node("", {}, is_node=False)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for line in lines:
        if not line.strip():
            continue
        node_line = _NODE.fullmatch(line)
        match = node_line or _OTHER_LINE.fullmatch(line)
        if match is None:
            raise _Denied("a statement whose query tree could not be read")
        indent = len(match.group("indent"))
        listed = (node_line.group("fields") or "") if node_line else ""
        fields = dict(part.split(": ", 1) for part in listed.split(", ") if ": " in part)
        node = _Node(match.group("kind"), fields, is_node=node_line is not None)
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root


def _walk(node: _Node, readable: Readable, database: str, ctes: frozenset[str], functions: set[str]) -> None:
    """Check every table and table function `node` reads; collect the functions it calls."""
    if node.kind in ("QUERY", "UNION") and node.is_node:
        defined = node.section("WITH")
        names = _cte_names(defined) if defined else frozenset()
        for child in node.children:
            if child is defined:
                for cte in _list_items(child):  # a CTE's own name inside its body is the table of that name
                    _walk(cte, readable, database, (ctes | names) - {cte.fields.get("cte_name", "")}, functions)
            else:
                _walk(child, readable, database, ctes | names, functions)
        return
    if node.is_node and node.kind == "TABLE_FUNCTION":
        name = node.fields.get("table_function_name", "")
        schema, _, view = name.rpartition(".")  # a parameterized view, perhaps qualified
        if name.lower() not in GENERATORS and not (schema in ("", readable.database) and view in readable.tables):
            raise _Denied(f"the table function {name}()")
    elif node.is_node and node.kind == "FUNCTION":
        name = node.fields.get("function_name", "")
        functions.add(name)
        if name.lower() in _IN_FUNCTIONS:
            arguments = _list_items(node.section("ARGUMENTS"))
            if len(arguments) == 2 and arguments[1].kind == "IDENTIFIER":  # `x IN table`
                _check_table(arguments[1], readable, database, ctes)
    elif node.is_node and node.kind == "TABLE":  # resolved tables never appear before analysis
        raise _Denied("a statement whose query tree could not be read")
    if not node.is_node and node.kind in _TABLE_POSITIONS:
        for child in node.children:
            if child.kind == "IDENTIFIER":
                _check_table(child, readable, database, ctes)
    for child in node.children:
        _walk(child, readable, database, ctes, functions)


def _cte_names(with_section: _Node) -> frozenset[str]:
    return frozenset(item.fields["cte_name"] for item in _list_items(with_section) if item.fields.get("is_cte") == "1")


def _list_items(section: _Node | None) -> list[_Node]:
    """The nodes of the LIST a section holds (WITH, ARGUMENTS, …)."""
    if section is None:
        return []
    items = [child for child in section.children if child.is_node]
    if len(items) == 1 and items[0].kind == "LIST":
        return [child for child in items[0].children if child.is_node]
    return items


def _check_table(identifier: _Node, readable: Readable, database: str, ctes: frozenset[str]) -> None:
    name = identifier.fields.get("identifier", "")
    if "." not in name and name in ctes:
        return  # its body is checked where it is defined
    if not _QUALIFIED_NAME.fullmatch(name):
        raise _Denied(f"{name or 'a table'} (names of letters, digits and _ only)")
    schema, _, table = name.rpartition(".")
    schema = schema or database
    if (schema == readable.database and table in readable.tables) or (
        schema == "system" and table in HARMLESS_SYSTEM_TABLES
    ):
        return
    raise _Denied(f"{schema}.{table}")
