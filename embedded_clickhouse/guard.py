"""What an access file's user may run, as the engine itself parses their statement, by their role.

chDB has no users or grants, so this server decides what every user of the access file may run
(the server's own admin runs anything). A row filter (`additional_table_filters`) applies only
where a query names a filtered table; table functions (`merge`, `mergeTreeIndex`, `file`, `url`,
`remote`, …), dictionaries, materialized views and system tables (`system.processes` shows
everyone's queries) read around it, and the server's files are the process's. So, by role
(access.policy):

- every role may read only the LabelPulse tables and views of access.policy.READABLE, a few
  system tables that hold no data, and table functions that generate rows: SELECT (with UNION,
  INTERSECT, EXCEPT), DESCRIBE and SHOW TABLES;
- writer (workers) and evaluator (alert evaluator) may also INSERT, only into the tables of
  access.policy.INSERTABLE (the worker's tables; alert_history): rows in a data format after
  `FORMAT` (not VALUES, whose rows the engine evaluates as expressions), or the rows of a SELECT
  checked as any read is. Not into a table function, not FROM INFILE, not with a SETTINGS clause
  of its own (settings travel with the request, where the role's forced ones win);
- reader and analyst insert nowhere: writes get ClickHouse's READONLY error;
- nothing else runs: no DDL, ALTER, DELETE, TRUNCATE, OPTIMIZE, SYSTEM, KILL, SET, USE, EXPLAIN,
  no INTO OUTFILE, and no format that reads the file a setting names (Template, Protobuf, …).

What a statement does is asked of the engine, never guessed from the SQL text:

1. `formatQuery(…)` parses it (the text travels as a bound parameter): exactly one statement, in
   the engine's canonical form. That canonical text is what then runs, so what was checked is
   what runs (for an INSERT with data: the canonical statement, and the data after it).
2. `EXPLAIN AST` names the kind of statement and, for an INSERT, the table it writes and the tree
   of its SELECT; the SELECT's text is the end of the canonical INSERT that parses into that tree.
3. `EXPLAIN QUERY TREE run_passes = 0` gives the parsed query tree: every table and table
   function in every FROM, JOIN, subquery, CTE and `IN table`, and every function called. It is
   the tree before analysis on purpose: analysis already runs scalar subqueries and reads files
   to infer table functions' schemas.

The trees are read as text, in which the engine prints names as they are. Names that need quoting
(anything but letters, digits and `_`) could pose as lines of a tree, so these users' statements
may not use them; LabelPulse's schema has none.
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
# Input and output formats that read the file a setting names (format_template_*, format_schema): any
# file the server may read, shown in the engine's error (compared in lower case).
_FORMATS_READING_FILES = frozenset(
    {"template", "templateignorespaces", "protobuf", "protobufsingle", "protobuflist", "capnproto"}
)
_VALUES = (
    "INSERT … VALUES (the engine evaluates its rows as expressions: send them after FORMAT in a data "
    "format such as JSONEachRow)"
)
_SELECT_START = re.compile(r"\b(?:SELECT|WITH)\b")
_TABLE_POSITIONS = frozenset({"JOIN TREE", "TABLE EXPRESSION", "LEFT TABLE EXPRESSION", "RIGHT TABLE EXPRESSION"})
_QUALIFIED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'", re.DOTALL)
_QUOTED_NAME = re.compile(r"`((?:[^`\\]|\\.)*)`", re.DOTALL)
_IDENTIFIER_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):\s*Identifier\s*\}")
_NODE = re.compile(r"(?P<indent> *)(?P<kind>[A-Z_]+(?: [A-Z_]+)*) id: \d+(?:, (?P<fields>.*))?")
_OTHER_LINE = re.compile(r"(?P<indent> *)(?P<kind>\S.*?)\s*")


@dataclass(frozen=True)
class Grants:
    """What a role may read (tables and views, parameterized ones too) and insert into, in one database."""

    database: str
    readable: frozenset[str]
    insertable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Asker:
    """Who sends a statement: a user of the access file, their role, what it grants, and the database
    their unqualified names resolve in (the request's)."""

    user: str
    role: str
    grants: Grants
    database: str


@dataclass(frozen=True)
class Checked:
    """A statement that may run: its canonical text, and the format of its answer (its FORMAT, else the request's)."""

    sql: str
    fmt: str


@dataclass
class _Node:
    kind: str  # a node (QUERY, IDENTIFIER, …) or a section of its parent (JOIN TREE, ARGUMENTS, …)
    fields: dict[str, str]
    is_node: bool
    children: list[_Node] = field(default_factory=list)

    def section(self, name: str) -> _Node | None:
        return next((child for child in self.children if not child.is_node and child.kind == name), None)


class _Denied(Exception):
    """What the statement does that the role does not allow."""


def check(connection: Any, sql: str, params: dict[str, str], asker: Asker, default_format: str) -> Checked:
    """The statement `asker` may run in place of `sql`, or ClickHouse's ACCESS_DENIED (or READONLY) error.

    `default_format` is the request's, for a statement that names none; `connection` runs the checks."""
    canonical = _canonical(connection, sql)
    lines = canonical.rstrip("\n").split("\n")
    if any(line.startswith("INTO OUTFILE") for line in lines):
        raise _denied(asker, "INTO OUTFILE (writing files on the server)")
    fmt = next((line.split(None, 1)[1].strip() for line in lines if line.startswith("FORMAT ")), default_format)
    statement = "\n".join(line for line in lines if not line.startswith("FORMAT "))
    grants = asker.grants
    try:
        _plain_names_only(statement, params)
        _check_format(fmt)
        kind, ast = _kind(connection, statement, params)
        if kind == "SelectWithUnionQuery":
            _check_reads(connection, statement, params, grants, asker.database)
        elif kind == "DescribeQuery" and statement.startswith("DESCRIBE TABLE"):
            described = statement.removeprefix("DESCRIBE TABLE").lstrip()
            _check_reads(connection, f"SELECT * FROM {described}", params, grants, asker.database)
        elif kind == "ShowTables":
            shown = [line.split()[1] for line in ast[1:] if line.split()[:1] == ["Identifier"]]
            if any(name != asker.database for name in shown):
                raise _Denied(f"the tables of database {shown[0]}")
        elif kind == "InsertQuery" and grants.insertable:
            select = _check_insert(ast, asker)
            if select is None:  # data after the statement: here only VALUES, which is expressions
                raise _Denied(_VALUES)
            _check_reads(
                connection, _select_text(connection, statement, select, params), params, grants, asker.database
            )
        elif kind in _WRITES and not grants.insertable:
            raise ClickHouseError.ours(READONLY, f"{asker.user}: Cannot execute query in readonly mode")
        else:
            kinds = (
                "SELECT, DESCRIBE, SHOW TABLES and INSERT" if grants.insertable else "SELECT, DESCRIBE and SHOW TABLES"
            )
            raise _Denied(f"`{lines[0][:60]}`: only {kinds} may run")
    except _Denied as denied:
        raise _denied(asker, str(denied)) from None
    return Checked(statement, fmt)


def check_insert(connection: Any, head: str, fmt: str, asker: Asker) -> str:
    """The INSERT `asker` may run in place of `head` (what comes before `FORMAT fmt` and the data),
    in the engine's canonical form; or ClickHouse's ACCESS_DENIED (READONLY for roles that read only).

    The data is the engine's to parse, in `fmt`: never VALUES, whose rows are expressions."""
    if not asker.grants.insertable:
        raise ClickHouseError.ours(READONLY, f"{asker.user}: Cannot execute query in readonly mode")
    # What runs is `head` as the engine parsed it, without parameters: the data path takes none.
    canonical = _canonical(connection, f"{head} FORMAT {fmt}").rstrip("\n")
    statement, _, named = canonical.rpartition("FORMAT ")
    try:
        _plain_names_only(canonical, {})
        kind, ast = _kind(connection, canonical, {})
        if kind != "InsertQuery" or named != fmt:
            raise _Denied(f"`{canonical[:60]}` as an INSERT with data after FORMAT {fmt}")
        if _check_insert(ast, asker) is not None:
            raise _Denied("INSERT … SELECT with data after it")
        if fmt.lower() == "values":
            raise _Denied(_VALUES)
        _check_format(fmt)
    except _Denied as denied:
        raise _denied(asker, str(denied)) from None
    return statement.rstrip()


def _denied(asker: Asker, what: str) -> ClickHouseError:
    article = "An" if asker.role[:1] in "aeiou" else "A"
    grants = asker.grants
    inserts = f" and insert only into {', '.join(sorted(grants.insertable))}" if grants.insertable else ""
    return ClickHouseError.ours(
        ACCESS_DENIED,
        f"{asker.user}: Not enough privileges. {article} {asker.role} may read only LabelPulse's tables and views in "
        f"{grants.database} (and system tables without data){inserts}, not {what}",
    )


def _check_format(fmt: str) -> None:
    if fmt.lower() in _FORMATS_READING_FILES:
        raise _Denied(f"FORMAT {fmt} (it reads the file a setting names)")


def _check_insert(ast: list[str], asker: Asker) -> list[str] | None:
    """Check what an INSERT writes into (from its EXPLAIN AST); the tree of the SELECT it inserts, if any."""
    target, select = [], None
    parts = [index for index, line in enumerate(ast) if line.startswith(" ") and not line.startswith("  ")]
    for start, end in zip(parts, [*parts[1:], len(ast)], strict=True):
        kind, _, rest = ast[start].strip().partition(" ")
        if kind == "Identifier":  # the table: one name, or its database and then its name
            target.append(rest)
        elif kind == "SelectWithUnionQuery":
            select = [line[1:] for line in ast[start:end]]
        elif kind == "Function":
            raise _Denied(f"INSERT INTO FUNCTION {rest.split(' ')[0]}() (writing where the function says)")
        elif kind == "Literal":
            raise _Denied("INSERT … FROM INFILE (reading files on the server)")
        elif kind == "Set":
            raise _Denied("SETTINGS in an INSERT (send them with the request)")
        elif kind != "ExpressionList":  # the columns
            raise _Denied(f"an INSERT with {kind}")
    schema, _, table = ".".join(target).rpartition(".")
    schema = schema or asker.database
    if not (schema == asker.grants.database and table in asker.grants.insertable):
        raise _Denied(f"INSERT INTO {schema}.{table}")
    return select


def _select_text(connection: Any, statement: str, select: list[str], params: dict[str, str]) -> str:
    """The SELECT of an INSERT … SELECT, as text: the end of its canonical form that the engine
    parses into the very tree the INSERT holds."""
    for start in (match.start() for match in _SELECT_START.finditer(statement)):
        try:
            if _explain(connection, f"EXPLAIN AST {statement[start:]}", params) == select:
                return statement[start:]
        except ClickHouseError:
            continue
    raise _Denied("an INSERT … SELECT whose SELECT could not be told apart")


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


def _check_reads(connection: Any, select: str, params: dict[str, str], grants: Grants, database: str) -> None:
    tree = _tree(_explain(connection, f"EXPLAIN QUERY TREE run_passes = 0 {select}", params))
    functions: set[str] = set()
    _walk(tree, grants, database, frozenset(), functions)
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


def _walk(node: _Node, grants: Grants, database: str, ctes: frozenset[str], functions: set[str]) -> None:
    """Check every table and table function `node` reads; collect the functions it calls."""
    if node.kind in ("QUERY", "UNION") and node.is_node:
        defined = node.section("WITH")
        names = _cte_names(defined) if defined else frozenset()
        for child in node.children:
            if child is defined:
                for cte in _list_items(child):  # a CTE's own name inside its body is the table of that name
                    _walk(cte, grants, database, (ctes | names) - {cte.fields.get("cte_name", "")}, functions)
            else:
                _walk(child, grants, database, ctes | names, functions)
        return
    if node.is_node and node.kind == "TABLE_FUNCTION":
        name = node.fields.get("table_function_name", "")
        schema, _, view = name.rpartition(".")  # a parameterized view, perhaps qualified
        if name.lower() not in GENERATORS and not (schema in ("", grants.database) and view in grants.readable):
            raise _Denied(f"the table function {name}()")
    elif node.is_node and node.kind == "FUNCTION":
        name = node.fields.get("function_name", "")
        functions.add(name)
        if name.lower() in _IN_FUNCTIONS:
            arguments = _list_items(node.section("ARGUMENTS"))
            if len(arguments) == 2 and arguments[1].kind == "IDENTIFIER":  # `x IN table`
                _check_table(arguments[1], grants, database, ctes)
    elif node.is_node and node.kind == "TABLE":  # resolved tables never appear before analysis
        raise _Denied("a statement whose query tree could not be read")
    if not node.is_node and node.kind in _TABLE_POSITIONS:
        for child in node.children:
            if child.kind == "IDENTIFIER":
                _check_table(child, grants, database, ctes)
    for child in node.children:
        _walk(child, grants, database, ctes, functions)


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


def _check_table(identifier: _Node, grants: Grants, database: str, ctes: frozenset[str]) -> None:
    name = identifier.fields.get("identifier", "")
    if "." not in name and name in ctes:
        return  # its body is checked where it is defined
    if not _QUALIFIED_NAME.fullmatch(name):
        raise _Denied(f"{name or 'a table'} (names of letters, digits and _ only)")
    schema, _, table = name.rpartition(".")
    schema = schema or database
    if (schema == grants.database and table in grants.readable) or (
        schema == "system" and table in HARMLESS_SYSTEM_TABLES
    ):
        return
    raise _Denied(f"{schema}.{table}")
