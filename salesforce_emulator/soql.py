"""A SOQL subset, parsed with sqlglot and evaluated against the emulator's org.

Supported: field lists with parent relationship paths (``Contract__r.ContractKey__c``, ``Account.Name``,
several hops), ``COUNT()``, aggregates ``COUNT(f)``, ``COUNT_DISTINCT(f)``, ``SUM``, ``MIN``, ``MAX``, ``AVG``
with optional ``GROUP BY``, ``WHERE`` with ``=  != <> < <= > >= IN  NOT IN  LIKE  AND  OR  NOT`` and ``= null``,
string / number / boolean / date / datetime literals and the relative date literals (``TODAY``,
``LAST_N_DAYS:30`` ...), ``ORDER BY`` (``ASC``/``DESC``, ``NULLS FIRST``/``LAST``), ``LIMIT``, ``OFFSET``.

SOQL is not SQL, so the text is pre-processed before sqlglot sees it: string literals, unquoted date and
datetime literals and the relative date literals are replaced by placeholder identifiers (their values are
kept aside), and ``COUNT()`` becomes ``COUNT(<placeholder>)``. Error messages copy real Salesforce
(wire notes §2.6): ``MALFORMED_QUERY`` ``unexpected token: X``, ``INVALID_FIELD`` with the caret block,
``INVALID_TYPE`` for an unknown object.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from salesforce_emulator.errors import SalesforceError

# ---------------------------------------------------------------------------------------------------------------
# Literals kept aside by the pre-processor


@dataclass(frozen=True)
class StringLiteral:
    value: str


@dataclass(frozen=True)
class DateLiteral:
    value: date


@dataclass(frozen=True)
class DateTimeLiteral:
    value: datetime  # aware, UTC


@dataclass(frozen=True)
class DateRange:
    """A relative date literal (TODAY, LAST_N_DAYS:n ...): whole days, both ends inclusive, UTC."""

    text: str
    first: date
    last: date


Placeholder = StringLiteral | DateLiteral | DateTimeLiteral | DateRange

_PLACEHOLDER = "__soqlp"
_COUNT_ALL = "__soql_count_all"

_DATETIME_RE = re.compile(
    r"(?<![\w.])(\d{4}-\d{2}-\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2}))?(?![\w:])"
)
_RELATIVE_N = (
    "LAST_N_DAYS|NEXT_N_DAYS|N_DAYS_AGO|LAST_N_WEEKS|NEXT_N_WEEKS|N_WEEKS_AGO|LAST_N_MONTHS|NEXT_N_MONTHS|"
    "N_MONTHS_AGO|LAST_N_QUARTERS|NEXT_N_QUARTERS|LAST_N_YEARS|NEXT_N_YEARS|N_YEARS_AGO"
)
_RELATIVE_FIXED = (
    "TODAY|YESTERDAY|TOMORROW|LAST_WEEK|THIS_WEEK|NEXT_WEEK|LAST_MONTH|THIS_MONTH|NEXT_MONTH|LAST_90_DAYS|"
    "NEXT_90_DAYS|THIS_QUARTER|LAST_QUARTER|NEXT_QUARTER|THIS_YEAR|LAST_YEAR|NEXT_YEAR"
)
_RELATIVE_RE = re.compile(
    rf"(?<![\w.])(?:(?P<n_name>{_RELATIVE_N})\s*:\s*(?P<n>\d+)|(?P<name>{_RELATIVE_FIXED}))(?![\w])",
    re.IGNORECASE,
)
_COUNT_EMPTY_RE = re.compile(r"\bCOUNT\s*\(\s*\)", re.IGNORECASE)
_STRING_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _today_utc() -> date:
    # The emulated org's time zone is UTC; never the machine's local time.
    return datetime.now(timezone.utc).date()


def _add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _month_end(first: date) -> date:
    return _add_months(first, 1) - timedelta(days=1)


def relative_date_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The inclusive UTC day range of a SOQL relative date literal such as ``LAST_N_DAYS`` with ``n``."""
    name = name.upper()
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday (en_US locale)
    month_start = today.replace(day=1)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    year_start = date(today.year, 1, 1)
    fixed: dict[str, tuple[date, date]] = {
        "TODAY": (today, today),
        "YESTERDAY": (today - timedelta(days=1),) * 2,
        "TOMORROW": (today + timedelta(days=1),) * 2,
        "THIS_WEEK": (week_start, week_start + timedelta(days=6)),
        "LAST_WEEK": (week_start - timedelta(days=7), week_start - timedelta(days=1)),
        "NEXT_WEEK": (week_start + timedelta(days=7), week_start + timedelta(days=13)),
        "THIS_MONTH": (month_start, _month_end(month_start)),
        "LAST_MONTH": (_add_months(month_start, -1), month_start - timedelta(days=1)),
        "NEXT_MONTH": (_add_months(month_start, 1), _month_end(_add_months(month_start, 1))),
        "LAST_90_DAYS": (today - timedelta(days=90), today),
        "NEXT_90_DAYS": (today + timedelta(days=1), today + timedelta(days=90)),
        "THIS_QUARTER": (quarter_start, _add_months(quarter_start, 3) - timedelta(days=1)),
        "LAST_QUARTER": (_add_months(quarter_start, -3), quarter_start - timedelta(days=1)),
        "NEXT_QUARTER": (_add_months(quarter_start, 3), _add_months(quarter_start, 6) - timedelta(days=1)),
        "THIS_YEAR": (year_start, date(today.year, 12, 31)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 1, 12, 31)),
    }
    if name in fixed:
        return fixed[name]
    if n is None:
        raise ValueError(f"{name} needs a number")
    # LAST_N_DAYS:n covers today and the n days before it; NEXT_N_DAYS:n starts tomorrow (SOQL date literals doc).
    ranged: dict[str, tuple[date, date]] = {
        "LAST_N_DAYS": (today - timedelta(days=n), today),
        "NEXT_N_DAYS": (today + timedelta(days=1), today + timedelta(days=n)),
        "N_DAYS_AGO": (today - timedelta(days=n),) * 2,
        "LAST_N_WEEKS": (week_start - timedelta(days=7 * n), week_start - timedelta(days=1)),
        "NEXT_N_WEEKS": (week_start + timedelta(days=7), week_start + timedelta(days=7 * (n + 1) - 1)),
        "N_WEEKS_AGO": (week_start - timedelta(days=7 * n), week_start - timedelta(days=7 * n - 6)),
        "LAST_N_MONTHS": (_add_months(month_start, -n), month_start - timedelta(days=1)),
        "NEXT_N_MONTHS": (_add_months(month_start, 1), _add_months(month_start, n + 1) - timedelta(days=1)),
        "N_MONTHS_AGO": (_add_months(month_start, -n), _add_months(month_start, -n + 1) - timedelta(days=1)),
        "LAST_N_QUARTERS": (_add_months(quarter_start, -3 * n), quarter_start - timedelta(days=1)),
        "NEXT_N_QUARTERS": (
            _add_months(quarter_start, 3),
            _add_months(quarter_start, 3 * (n + 1)) - timedelta(days=1),
        ),
        "LAST_N_YEARS": (date(today.year - n, 1, 1), date(today.year - 1, 12, 31)),
        "NEXT_N_YEARS": (date(today.year + 1, 1, 1), date(today.year + n, 12, 31)),
        "N_YEARS_AGO": (date(today.year - n, 1, 1), date(today.year - n, 12, 31)),
    }
    return ranged[name]


# ---------------------------------------------------------------------------------------------------------------
# Errors with the real messages


def malformed(token: str) -> SalesforceError:
    """400 MALFORMED_QUERY as real Salesforce words it (``unexpected token: SELEKT``)."""
    return SalesforceError(400, "MALFORMED_QUERY", f"unexpected token: {token}")


def _caret_message(soql: str, position: int, text: str) -> str:
    """The block real Salesforce puts before INVALID_FIELD/INVALID_TYPE messages: the line, a caret, Row/Column."""
    line_start = soql.rfind("\n", 0, position) + 1
    line_end = soql.find("\n", position)
    line = soql[line_start : line_end if line_end >= 0 else len(soql)]
    row = soql.count("\n", 0, position) + 1
    column = position - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{text}"


def _no_such_column(name: str, entity: str) -> str:
    return (
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure to "
        "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
        "appropriate names."
    )


def _bad_relationship(name: str) -> str:
    return (
        f"Didn't understand relationship '{name}' in field path. If you are attempting to use a custom "
        "relationship, be sure to append the '__r' after the custom relationship name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


def _unsupported_type(name: str) -> str:
    return (
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append "
        "the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
    )


# ---------------------------------------------------------------------------------------------------------------
# Pre-processing: SOQL text -> SQL text sqlglot can parse, plus the literals kept aside


@dataclass
class _Prepared:
    sql: str
    placeholders: dict[str, Placeholder]
    string_spans: list[tuple[int, int]]  # [start, end) of string literals in the original text


def _prepare(soql: str, today: date) -> _Prepared:
    placeholders: dict[str, Placeholder] = {}
    spans: list[tuple[int, int]] = []
    out: list[str] = []

    def keep(value: Placeholder) -> str:
        name = f"{_PLACEHOLDER}{len(placeholders)}"
        placeholders[name] = value
        return f" {name} "

    def rewrite_code(code: str) -> str:
        def relative(match: re.Match[str]) -> str:
            if match.group("name"):
                text = match.group("name").upper()
                first, last = relative_date_range(text, None, today)
            else:
                n = int(match.group("n"))
                text = f"{match.group('n_name').upper()}:{n}"
                first, last = relative_date_range(match.group("n_name"), n, today)
            return keep(DateRange(text, first, last))

        def absolute(match: re.Match[str]) -> str:
            day_text, hh, mm, ss, millis, zone = match.groups()
            try:
                day = date.fromisoformat(day_text)
                if hh is None:
                    return keep(DateLiteral(day))
                offset = timedelta(0)
                if zone != "Z":
                    sign = 1 if zone[0] == "+" else -1
                    digits = zone[1:].replace(":", "")
                    offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
                moment = datetime(
                    day.year, day.month, day.day, int(hh), int(mm), int(ss),
                    int((millis or "0").ljust(3, "0")) * 1000, tzinfo=timezone(offset),
                )
            except ValueError:
                raise malformed(match.group(0)) from None
            return keep(DateTimeLiteral(moment.astimezone(timezone.utc)))

        code = _COUNT_EMPTY_RE.sub(f"COUNT({_COUNT_ALL})", code)
        code = _RELATIVE_RE.sub(relative, code)
        return _DATETIME_RE.sub(absolute, code)

    i = 0
    code_start = 0
    while i < len(soql):
        char = soql[i]
        if char == "'":
            out.append(rewrite_code(soql[code_start:i]))
            j = i + 1
            value: list[str] = []
            while True:
                if j >= len(soql):
                    raise malformed("'" + soql[i + 1 :])  # unterminated string literal
                c = soql[j]
                if c == "\\" and j + 1 < len(soql):
                    nxt = soql[j + 1]
                    # \% and \_ stay escaped: they only mean something inside a LIKE pattern.
                    value.append(_STRING_ESCAPES.get(nxt, "\\" + nxt))
                    j += 2
                    continue
                if c == "'":
                    break
                value.append(c)
                j += 1
            spans.append((i, j + 1))
            out.append(keep(StringLiteral("".join(value))))
            i = j + 1
            code_start = i
            continue
        if char == '"':
            raise malformed('"')  # SOQL has no double-quoted identifiers or strings
        i += 1
    out.append(rewrite_code(soql[code_start:]))
    return _Prepared("".join(out), placeholders, spans)


def _position_of(soql: str, spans: list[tuple[int, int]], text: str) -> int:
    """Where ``text`` (an identifier or dotted path as written) first occurs outside string literals."""
    pattern = re.compile(r"(?<![\w.])" + re.escape(text) + r"(?![\w])", re.IGNORECASE)
    for match in pattern.finditer(soql):
        if not any(start <= match.start() < end for start, end in spans):
            return match.start()
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Field paths


@dataclass(frozen=True)
class Hop:
    """One child-to-parent step: the reference field on the child and the parent object it points to."""

    reference_field: str
    relationship_name: str
    target: Any  # ObjectDef


@dataclass(frozen=True)
class FieldPath:
    hops: tuple[Hop, ...]
    field: Any  # FieldDef
    column: str  # canonical dotted name, e.g. Contract__r.ContractKey__c

    @property
    def kind(self) -> str:
        return _kind(self.field.type)


def _kind(field_type: str) -> str:
    if field_type in ("int", "double", "currency", "percent", "long"):
        return "number"
    if field_type in ("id", "reference"):
        return "id"
    if field_type in ("boolean", "date", "datetime"):
        return field_type
    return "text"


_SOAP_TYPE = {"number": "double", "boolean": "boolean", "date": "date", "datetime": "dateTime", "id": "id"}


class _ParentCache:
    """Parent records fetched once per query (``org.get``), keyed by object and id."""

    def __init__(self, org: Any) -> None:
        self._org = org
        self._records: dict[tuple[str, str], dict | None] = {}

    def get(self, obj: str, record_id: str) -> dict | None:
        key = (obj, record_id)
        if key not in self._records:
            self._records[key] = self._org.get(obj, record_id)
        return self._records[key]


def _getter(path: FieldPath, parents: _ParentCache) -> Callable[[dict], Any]:
    name = path.field.name
    if not path.hops:
        return lambda record: record.get(name)

    def get(record: dict) -> Any:
        current: dict | None = record
        for hop in path.hops:
            parent_id = current.get(hop.reference_field)
            if not parent_id:
                return None
            current = parents.get(hop.target.name, parent_id)
            if current is None:
                return None
        return current.get(name)

    return get


# ---------------------------------------------------------------------------------------------------------------
# The parsed query


@dataclass
class _Aggregate:
    function: str  # count_all | count | count_distinct | sum | min | max | avg
    path: FieldPath | None
    key: str  # output key: alias or exprN


@dataclass
class _Query:
    soql: str
    prepared: _Prepared
    obj: Any  # ObjectDef
    select: list[FieldPath | _Aggregate]
    where: exp.Expression | None
    group_by: list[FieldPath]
    order: list[tuple[FieldPath, bool, bool]]  # (path, descending, nulls_first)
    limit: int | None
    offset: int

    @property
    def is_aggregate(self) -> bool:
        return any(isinstance(item, _Aggregate) for item in self.select)

    @property
    def is_count_only(self) -> bool:
        return len(self.select) == 1 and isinstance(self.select[0], _Aggregate) and (
            self.select[0].function == "count_all"
        )


_SUPPORTED_SELECT_ARGS = {"expressions", "from", "from_", "where", "order", "limit", "offset", "group"}
_AGGREGATES: dict[type, str] = {exp.Count: "count", exp.Sum: "sum", exp.Min: "min", exp.Max: "max", exp.Avg: "avg"}


class _Parser:
    def __init__(self, org: Any, soql: str) -> None:
        self.org = org
        self.soql = soql
        self.prepared = _prepare(soql, _today_utc())

    def parse(self) -> _Query:
        first = re.match(r"\s*([^\s(,]+)", self.soql)
        if first is None:
            raise malformed("<EOF>")
        if first.group(1).upper() != "SELECT":
            raise malformed(first.group(1))
        try:
            tree = sqlglot.parse_one(self.prepared.sql)
        except (ParseError, TokenError) as error:
            errors = getattr(error, "errors", None) or [{}]
            raise malformed(self._source_text(errors[0].get("highlight") or "<EOF>")) from None
        if not isinstance(tree, exp.Select):
            raise malformed(tree.key.upper())
        extra = [key for key, value in tree.args.items() if value and key not in _SUPPORTED_SELECT_ARGS]
        if extra:
            raise malformed(extra[0].upper().rstrip("_S"))
        from_ = tree.args.get("from_") or tree.args.get("from")
        if from_ is None:
            raise malformed("<EOF>")
        table = from_.this
        if not isinstance(table, exp.Table) or table.args.get("alias") or table.args.get("db"):
            raise malformed(from_.this.sql())
        object_name = table.name
        try:
            obj = self.org.schema.object(object_name)
        except KeyError:
            position = _position_of(self.soql, self.prepared.string_spans, object_name)
            raise SalesforceError(
                400, "INVALID_TYPE", _caret_message(self.soql, position, _unsupported_type(object_name))
            ) from None

        select: list[FieldPath | _Aggregate] = []
        expr_index = 0
        for item in tree.expressions:
            alias = None
            if isinstance(item, exp.Alias):
                alias, item = item.alias, item.this
            if isinstance(item, exp.Column):
                if alias:
                    raise malformed(alias)
                select.append(self.path(obj, item))
                continue
            aggregate = self.aggregate(obj, item)
            if alias is None and aggregate.function != "count_all":
                aggregate.key = f"expr{expr_index}"
                expr_index += 1
            elif alias is not None:
                aggregate.key = alias
            select.append(aggregate)

        group_by = [self.path(obj, column) for column in (tree.args.get("group").expressions if tree.args.get(
            "group") else [])]
        if any(isinstance(item, _Aggregate) for item in select) or group_by:
            grouped = {path.column for path in group_by}
            for item in select:
                if isinstance(item, FieldPath) and item.column not in grouped:
                    position = _position_of(self.soql, self.prepared.string_spans, item.column)
                    raise SalesforceError(400, "MALFORMED_QUERY", _caret_message(
                        self.soql, position,
                        f"Field must be grouped or aggregated: {item.field.name}"))

        order: list[tuple[FieldPath, bool, bool]] = []
        if tree.args.get("order"):
            for ordered in tree.args["order"].expressions:
                if not isinstance(ordered.this, exp.Column):
                    raise malformed(ordered.this.sql())
                descending = bool(ordered.args.get("desc"))
                nulls_first = ordered.args.get("nulls_first")
                # SOQL default: ASC NULLS FIRST, DESC NULLS LAST.
                order.append((self.path(obj, ordered.this), descending,
                              (not descending) if nulls_first is None else bool(nulls_first)))

        where = tree.args.get("where").this if tree.args.get("where") else None
        return _Query(
            soql=self.soql, prepared=self.prepared, obj=obj, select=select, where=where, group_by=group_by,
            order=order, limit=self.integer(tree.args.get("limit")), offset=self.integer(tree.args.get("offset")) or 0,
        )

    def _source_text(self, highlight: str) -> str:
        if highlight.startswith(_PLACEHOLDER):
            value = self.prepared.placeholders.get(highlight)
            if isinstance(value, StringLiteral):
                return f"'{value.value}'"
            if isinstance(value, DateRange):
                return value.text
        if highlight == _COUNT_ALL:
            return ")"
        return highlight

    def integer(self, node: exp.Expression | None) -> int | None:
        if node is None:
            return None
        value = node.expression if isinstance(node, (exp.Limit, exp.Offset)) else node
        if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
            raise malformed(self._source_text(value.sql()))
        return int(value.this)

    def aggregate(self, obj: Any, node: exp.Expression) -> _Aggregate:
        if isinstance(node, exp.Anonymous) and node.name.upper() == "COUNT_DISTINCT" and len(node.expressions) == 1:
            argument = node.expressions[0]
            if isinstance(argument, exp.Column):
                return _Aggregate("count_distinct", self.path(obj, argument), "")
        function = _AGGREGATES.get(type(node))
        if function is None:
            raise malformed(self._source_text(node.sql().split("(")[0]))
        argument = node.this
        if isinstance(argument, exp.Distinct) or not isinstance(argument, exp.Column):
            raise malformed(self._source_text(argument.sql() if argument is not None else "("))
        if function == "count" and argument.name == _COUNT_ALL:
            return _Aggregate("count_all", None, "")
        path = self.path(obj, argument)
        if function in ("sum", "avg") and path.kind != "number":
            position = _position_of(self.soql, self.prepared.string_spans, path.column)
            raise SalesforceError(400, "MALFORMED_QUERY", _caret_message(
                self.soql, position,
                f"field {path.field.name} does not support aggregate operator {function.upper()}"))
        return _Aggregate(function, path, "")

    def path(self, obj: Any, column: exp.Column) -> FieldPath:
        parts = [part.name for part in column.parts]
        if any(part.startswith(_PLACEHOLDER) or part == _COUNT_ALL for part in parts):
            raise malformed(self._source_text(parts[-1]))
        dotted = ".".join(parts)
        if len(parts) > 1 and parts[0].lower() == obj.name.lower():
            parts = parts[1:]  # SOQL allows the object name as a prefix: Account.Name FROM Account
        hops: list[Hop] = []
        current = obj
        for name in parts[:-1]:
            reference = current.relationship(name)
            if reference is None or not reference.reference_to:
                position = _position_of(self.soql, self.prepared.string_spans, dotted)
                raise SalesforceError(
                    400, "INVALID_FIELD", _caret_message(self.soql, position, _bad_relationship(name))
                )
            target = self.org.schema.object(reference.reference_to[0])
            hops.append(Hop(reference.name, reference.relationship_name, target))
            current = target
        field_def = current.field(parts[-1])
        if field_def is None:
            position = _position_of(self.soql, self.prepared.string_spans, dotted)
            raise SalesforceError(
                400, "INVALID_FIELD", _caret_message(self.soql, position, _no_such_column(parts[-1], current.name))
            )
        column_name = ".".join([hop.relationship_name for hop in hops] + [field_def.name])
        return FieldPath(tuple(hops), field_def, column_name)


# ---------------------------------------------------------------------------------------------------------------
# WHERE: compiled to a Python predicate


def _datetime_text(moment: datetime) -> str:
    """A UTC datetime in the stored form (``YYYY-MM-DDTHH:MM:SS.000+0000``), which sorts as text."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class _WhereCompiler:
    def __init__(self, parser: _Parser, query: _Query, parents: _ParentCache) -> None:
        self.parser = parser
        self.query = query
        self.parents = parents

    def compile(self, node: exp.Expression) -> Callable[[dict], bool]:
        if isinstance(node, exp.Paren):
            return self.compile(node.this)
        if isinstance(node, exp.And):
            left, right = self.compile(node.this), self.compile(node.expression)
            return lambda record: left(record) and right(record)
        if isinstance(node, exp.Or):
            left, right = self.compile(node.this), self.compile(node.expression)
            return lambda record: left(record) or right(record)
        if isinstance(node, exp.Not):
            inner = self.compile(node.this)
            return lambda record: not inner(record)
        if isinstance(node, (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)):
            return self.comparison(node)
        if isinstance(node, exp.In):
            return self.membership(node)
        if isinstance(node, exp.Like):
            return self.like(node)
        raise malformed(self.parser._source_text(node.sql().split(" ")[0]))

    def field(self, node: exp.Expression) -> FieldPath:
        if not isinstance(node, exp.Column) or node.name.startswith(_PLACEHOLDER):
            raise malformed(self.parser._source_text(node.sql()))
        return self.parser.path(self.query.obj, node)

    def type_error(self, path: FieldPath, expected: str, quoted: bool) -> SalesforceError:
        position = _position_of(self.query.soql, self.query.prepared.string_spans, path.column)
        enclosed = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return SalesforceError(400, "INVALID_FIELD", _caret_message(
            self.query.soql, position,
            f"value of filter criterion for field '{path.field.name}' must be of type {expected} and {enclosed}"))

    def value(self, path: FieldPath, node: exp.Expression) -> Any:
        """A literal converted to the stored representation of the field's kind (None for null)."""
        kind = path.kind
        if isinstance(node, exp.Null):
            return None
        placeholder = self.query.prepared.placeholders.get(node.name) if isinstance(node, exp.Column) else None
        if isinstance(node, exp.Column) and placeholder is None:
            raise malformed(node.sql())
        if kind in ("text", "id"):
            if not isinstance(placeholder, StringLiteral):
                raise self.type_error(path, "string", quoted=True)
            text = placeholder.value.replace("\\%", "%").replace("\\_", "_")
            return text.casefold() if kind == "text" else text
        if kind == "number":
            negative = isinstance(node, exp.Neg)
            literal = node.this if negative else node
            if not isinstance(literal, exp.Literal) or literal.is_string:
                raise self.type_error(path, "double", quoted=False)
            number = float(literal.this) if any(c in literal.this for c in ".eE") else int(literal.this)
            return -number if negative else number
        if kind == "boolean":
            if not isinstance(node, exp.Boolean):
                raise self.type_error(path, "boolean", quoted=False)
            return bool(node.this)
        if kind == "date":
            if isinstance(placeholder, DateLiteral):
                return placeholder.value.isoformat()
            if isinstance(placeholder, DateRange):
                return (placeholder.first.isoformat(), placeholder.last.isoformat())
            raise self.type_error(path, "date", quoted=False)
        # datetime
        if isinstance(placeholder, DateTimeLiteral):
            return _datetime_text(placeholder.value)
        if isinstance(placeholder, DateRange):
            start = datetime(placeholder.first.year, placeholder.first.month, placeholder.first.day,
                             tzinfo=timezone.utc)
            end = datetime(placeholder.last.year, placeholder.last.month, placeholder.last.day,
                           tzinfo=timezone.utc) + timedelta(days=1) - timedelta(milliseconds=1)
            return (_datetime_text(start), _datetime_text(end))
        raise self.type_error(path, "dateTime", quoted=False)

    def normaliser(self, path: FieldPath) -> Callable[[Any], Any]:
        kind = path.kind
        if kind == "text":
            return lambda v: v.casefold() if isinstance(v, str) else v
        if kind == "datetime":
            # Stored datetimes carry milliseconds; compare at that precision as text.
            return lambda v: v if v is None else str(v)
        return lambda v: v

    def comparison(self, node: exp.Expression) -> Callable[[dict], bool]:
        path = self.field(node.this)
        get = _getter(path, self.parents)
        norm = self.normaliser(path)
        literal = self.value(path, node.expression)
        op = type(node)
        is_id = path.kind == "id"
        if isinstance(literal, tuple):  # a relative date range
            first, last = literal
            tests: dict[type, Callable[[Any], bool]] = {
                exp.EQ: lambda v: v is not None and first <= v <= last,
                exp.NEQ: lambda v: v is None or not (first <= v <= last),
                exp.LT: lambda v: v is not None and v < first,
                exp.LTE: lambda v: v is not None and v <= last,
                exp.GT: lambda v: v is not None and v > last,
                exp.GTE: lambda v: v is not None and v >= first,
            }
            test = tests[op]
            return lambda record: test(norm(get(record)))
        if is_id and isinstance(literal, str) and len(literal) == 15:
            base = get
            get = lambda record: (lambda v: v[:15] if isinstance(v, str) else v)(base(record))  # noqa: E731
        if op is exp.EQ:
            return lambda record: norm(get(record)) == literal
        if op is exp.NEQ:
            return lambda record: norm(get(record)) != literal
        if literal is None:
            return lambda record: False
        ordered: dict[type, Callable[[Any], bool]] = {
            exp.LT: lambda v: v < literal,
            exp.LTE: lambda v: v <= literal,
            exp.GT: lambda v: v > literal,
            exp.GTE: lambda v: v >= literal,
        }
        test = ordered[op]

        def compare(record: dict) -> bool:
            value = norm(get(record))
            return value is not None and test(value)

        return compare

    def membership(self, node: exp.In) -> Callable[[dict], bool]:
        if node.args.get("query") is not None:
            raise malformed("SELECT")  # semi-joins are outside the emulator's SOQL subset
        path = self.field(node.this)
        get = _getter(path, self.parents)
        norm = self.normaliser(path)
        values = {self.value(path, item) for item in node.expressions}
        if any(isinstance(v, tuple) for v in values):
            raise self.type_error(path, _SOAP_TYPE.get(path.kind, "string"), quoted=False)
        return lambda record: norm(get(record)) in values

    def like(self, node: exp.Like) -> Callable[[dict], bool]:
        path = self.field(node.this)
        get = _getter(path, self.parents)
        placeholder = self.query.prepared.placeholders.get(node.expression.name) if isinstance(
            node.expression, exp.Column) else None
        if not isinstance(placeholder, StringLiteral):
            raise self.type_error(path, "string", quoted=True)
        pattern = _like_regex(placeholder.value)
        return lambda record: (lambda v: v is not None and pattern.fullmatch(str(v)) is not None)(get(record))


def _like_regex(pattern: str) -> re.Pattern[str]:
    """SOQL LIKE: ``%`` any run, ``_`` one character, ``\\%``/``\\_`` literal; case-insensitive."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


# ---------------------------------------------------------------------------------------------------------------
# Results


def _sort_key(kind: str) -> Callable[[Any], Any]:
    if kind == "text":
        return lambda v: v.casefold() if isinstance(v, str) else v
    return lambda v: v


def _sorted(rows: list[Any], keys: list[tuple[Callable[[Any], Any], bool, bool, str]]) -> list[Any]:
    """Stable multi-key sort; each key is (getter, descending, nulls_first, kind)."""
    for get, descending, nulls_first, kind in reversed(keys):
        normal = _sort_key(kind)
        present = [row for row in rows if get(row) is not None]
        missing = [row for row in rows if get(row) is None]
        present.sort(key=lambda row: normal(get(row)), reverse=descending)
        rows = missing + present if nulls_first else present + missing
    return rows


def csv_value(value: Any) -> str:
    """A stored value as Bulk API CSV text: null is empty, booleans lower case."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _zulu(value: Any) -> str:
    if isinstance(value, str) and value.endswith("+0000"):
        return value[:-5] + "Z"
    return csv_value(value)


@dataclass
class QueryResult:
    """The rows a SOQL query selected, ready to be shaped as REST JSON pages or Bulk 2.0 CSV."""

    object_name: str
    columns: list[str]
    total_size: int
    is_aggregate: bool = False
    is_count_only: bool = False
    _rows: list[Any] = field(default_factory=list, repr=False)
    _paths: list[FieldPath] = field(default_factory=list, repr=False)
    _getters: list[Callable[[Any], Any]] = field(default_factory=list, repr=False)

    @property
    def row_count(self) -> int:
        """How many records ``records()`` pages through (0 for ``COUNT()``, whose answer is total_size)."""
        return len(self._rows)

    def records(self, api_version: str, start: int = 0, stop: int | None = None) -> list[dict]:
        """Rows ``start:stop`` in the REST query shape (``attributes``, nested parent objects)."""
        if self.is_count_only:
            return []
        rows = self._rows[start:stop]
        if self.is_aggregate:
            return [{"attributes": {"type": "AggregateResult"}, **row} for row in rows]
        return [self._record(row, api_version) for row in rows]

    def _record(self, row: dict, api_version: str) -> dict:
        out: dict[str, Any] = {"attributes": _attributes(self.object_name, row.get("Id"), api_version)}
        for path, get in zip(self._paths, self._getters):
            if not path.hops:
                out[path.field.name] = row.get(path.field.name)
                continue
            # Walk/create nested parent objects; a missing parent anywhere on the path is JSON null.
            target: dict[str, Any] | None = out
            current: dict | None = row
            for hop in path.hops:
                parent = None if current is None else self._parent(hop, current)
                if hop.relationship_name not in target:
                    target[hop.relationship_name] = (
                        None if parent is None
                        else {"attributes": _attributes(hop.target.name, parent.get("Id"), api_version)}
                    )
                target = target[hop.relationship_name]
                current = parent
                if target is None:
                    break
            if target is not None and current is not None:
                target[path.field.name] = current.get(path.field.name)
        return out

    _parents: _ParentCache | None = field(default=None, repr=False)

    def _parent(self, hop: Hop, record: dict) -> dict | None:
        parent_id = record.get(hop.reference_field)
        if not parent_id or self._parents is None:
            return None
        return self._parents.get(hop.target.name, parent_id)

    def csv_rows(self) -> Iterator[list[str]]:
        """Flat rows for Bulk 2.0 query results: one string per column, in ``columns`` order."""
        if self.is_aggregate:
            for row in self._rows:
                yield [csv_value(row.get(column)) for column in self.columns]
            return
        # Bulk CSV writes datetimes in UTC with "Z" (2024-05-01T12:00:00.000Z) where REST JSON has "+0000".
        # UNCONFIRMED against a Bulk 2.0 recording; Bulk 1.0 CSV results look like this.
        zulu = [path.kind == "datetime" for path in self._paths]
        for row in self._rows:
            yield [
                _zulu(value) if is_datetime else csv_value(value)
                for value, is_datetime in zip((get(row) for get in self._getters), zulu)
            ]


def _attributes(object_name: str, record_id: str | None, api_version: str) -> dict[str, str]:
    return {"type": object_name, "url": f"/services/data/v{api_version}/sobjects/{object_name}/{record_id}"}


def _aggregate_value(aggregate: _Aggregate, rows: list[dict], get: Callable[[dict], Any] | None) -> Any:
    if aggregate.function == "count_all":
        return len(rows)
    assert get is not None
    values = [v for v in (get(row) for row in rows) if v is not None]
    if aggregate.function == "count":
        return len(values)
    if aggregate.function == "count_distinct":
        return len({v.casefold() if isinstance(v, str) else v for v in values})
    if not values:
        return None
    if aggregate.function == "sum":
        return sum(values)
    if aggregate.function == "avg":
        return sum(values) / len(values)
    return min(values) if aggregate.function == "min" else max(values)


def _paths_used(query: _Query) -> list[FieldPath]:
    paths = [item for item in query.select if isinstance(item, FieldPath)]
    paths += [item.path for item in query.select if isinstance(item, _Aggregate) and item.path is not None]
    return paths + query.group_by + [path for path, _, _ in query.order]


def _first_key(path: FieldPath) -> str:
    """The field of the queried record a path starts from: the field itself or its first reference field."""
    return path.hops[0].reference_field if path.hops else path.field.name


def validate_query(org: Any, soql: str) -> tuple[str, bool]:
    """Parse ``soql`` without running it: the object's API name and whether the query aggregates.

    Raises the same SalesforceError as run_query for a malformed query or an unknown object or field.
    """
    parser = _Parser(org, soql)
    query = parser.parse()
    if query.where is not None:
        _WhereCompiler(parser, query, _ParentCache(org)).compile(query.where)
    return query.obj.name, query.is_aggregate or bool(query.group_by)


def run_query(org: Any, soql: str, *, include_deleted: bool = False) -> QueryResult:
    """Parse and evaluate ``soql`` against ``org``; raises SalesforceError with real Salesforce messages."""
    parser = _Parser(org, soql)
    query = parser.parse()
    parents = _ParentCache(org)
    predicate = _WhereCompiler(parser, query, parents).compile(query.where) if query.where is not None else None
    if not include_deleted:
        source: Iterable[dict] = org.iter_records(query.obj.name)
    else:
        source = org.iter_records(query.obj.name, include_deleted=True)
    matching = (record for record in source if predicate is None or predicate(record))
    if query.is_count_only and not query.group_by:
        # COUNT() needs no rows at all: count them as they stream by (a million rows stay out of memory).
        count = sum(1 for _ in matching)
        if query.limit is not None:
            count = min(count, query.limit)
        return QueryResult(query.obj.name, [], count, is_aggregate=True, is_count_only=True)
    # Keep only the fields the result, its sort and its parent lookups read: full records would cost ~1 KB each.
    needed = {"Id"} | {_first_key(path) for path in _paths_used(query)}
    rows = [{key: record.get(key) for key in needed} for record in matching]

    if query.is_aggregate or query.group_by:
        return _aggregate_result(query, rows, parents)

    rows = _sorted(rows, [(_getter(path, parents), desc, nulls_first, path.kind)
                          for path, desc, nulls_first in query.order])
    end = None if query.limit is None else query.offset + query.limit
    rows = rows[query.offset:end]
    paths = [item for item in query.select if isinstance(item, FieldPath)]
    unique: list[FieldPath] = []
    for path in paths:
        if path.column not in {p.column for p in unique}:
            unique.append(path)
    return QueryResult(
        object_name=query.obj.name,
        columns=[path.column for path in unique],
        total_size=len(rows),
        _rows=rows,
        _paths=unique,
        _getters=[_getter(path, parents) for path in unique],
        _parents=parents,
    )


def _aggregate_result(query: _Query, rows: list[dict], parents: _ParentCache) -> QueryResult:
    group_getters = [_getter(path, parents) for path in query.group_by]
    groups: dict[tuple, list[dict]] = {}
    if query.group_by:
        for row in rows:
            key = tuple((lambda v: v.casefold() if isinstance(v, str) else v)(g(row)) for g in group_getters)
            groups.setdefault(key, []).append(row)
    else:
        groups[()] = rows
    out: list[dict] = []
    columns: list[str] = []
    for item in query.select:
        columns.append(item.field.name if isinstance(item, FieldPath) else item.key)
    for members in groups.values():
        result: dict[str, Any] = {}
        for item in query.select:
            if isinstance(item, FieldPath):
                result[item.field.name] = _getter(item, parents)(members[0])
            else:
                get = _getter(item.path, parents) if item.path is not None else None
                result[item.key or "expr0"] = _aggregate_value(item, members, get)
        out.append(result)
    by_name = {path.column: path for path in query.group_by}
    sort_keys = []
    for path, desc, nulls_first in query.order:
        if path.column not in by_name:
            position = _position_of(query.soql, query.prepared.string_spans, path.column)
            raise SalesforceError(400, "MALFORMED_QUERY", _caret_message(
                query.soql, position, f"Ordered field must be grouped or aggregated: {path.field.name}"))
        name = path.field.name
        sort_keys.append(((lambda n: lambda row: row.get(n))(name), desc, nulls_first, path.kind))
    out = _sorted(out, sort_keys)
    end = None if query.limit is None else query.offset + query.limit
    out = out[query.offset:end]
    return QueryResult(query.obj.name, columns, len(out), is_aggregate=True, _rows=out)
