"""Field ownership: one Source of Record per Salesforce field when several flows write the same object.

`mappings/ownership.yaml` lists, per object and field, the flows allowed to write it, highest precedence
first:

    Account:
      Name: [erp_partners, product_accounts]

The first flow owns the field and always writes it. A later flow writes it only for records that no flow
ahead of it in the list has written (it fills the field for records only it knows). Two flows writing the
same field without such an entry is an error; so is an entry that misses a writing flow or names a flow that
does not write the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from passwork_assets.mapping.issues import MappingIssue, display_path
from passwork_assets.mapping.models import FieldSpec, FlowMapping
from passwork_assets.mapping.yaml_positions import PositionedYaml

OWNERSHIP_FILE = "ownership.yaml"


@dataclass(frozen=True)
class PrecedenceRule:
    """The flows that may write `object.field`, highest precedence first, and where that is declared."""

    object: str
    field: str
    flows: tuple[str, ...]
    line: int | None


def written_field_key(spec: FieldSpec) -> str:
    """The field a mapping sets, as a case-insensitive key (parent links count as their reference field)."""
    return spec.written_field.lower()


def parse_ownership(doc: PositionedYaml, path: Path) -> tuple[list[PrecedenceRule], list[MappingIssue]]:
    """Read ownership.yaml: `{Object: {Field: [flow, ...]}}`; a parent link may be named `Rel.ExtField` too."""
    file = display_path(path)
    rules: list[PrecedenceRule] = []
    issues: list[MappingIssue] = []
    if doc.data is None:
        return rules, issues
    if not isinstance(doc.data, dict):
        return rules, [MappingIssue(file, doc.line(()), "", "must map object names to {field: [flows]}")]
    for obj, fields in doc.data.items():
        if not isinstance(fields, dict):
            issues.append(
                MappingIssue(file, doc.line((obj,)), str(obj), "must map field names to a list of flows, e.g. Name: [erp_partners, product_accounts]")
            )
            continue
        for fld, flows in fields.items():
            key = f"{obj}.{fld}"
            line = doc.line((obj, fld))
            if not isinstance(flows, list) or not flows or not all(isinstance(f, str) for f in flows):
                issues.append(
                    MappingIssue(file, line, key, "must be a list of flow names, highest precedence first, e.g. [erp_partners, product_accounts]")
                )
                continue
            if len(set(flows)) != len(flows):
                issues.append(MappingIssue(file, line, key, "lists a flow twice"))
                continue
            name = FieldSpec(target=str(fld)).written_field if "." in str(fld) else str(fld)
            rules.append(PrecedenceRule(str(obj), name, tuple(flows), line))
    return rules, issues


def check_ownership(
    flows: list[FlowMapping], rules: list[PrecedenceRule], ownership_path: Path
) -> tuple[dict[tuple[str, str], tuple[str, ...]], list[MappingIssue]]:
    """Every field written by several flows has a rule naming exactly those flows (in any order).

    Returns the precedence by (object lower, field lower) and the problems found. The upsert key of a flow is
    not counted as written: it is the match key, equal in every flow by definition.
    """
    issues: list[MappingIssue] = []
    writers: dict[tuple[str, str], list[tuple[FlowMapping, FieldSpec]]] = {}
    for flow in flows:
        key_field = flow.target.external_id.lower()
        for spec in flow.fields:
            fkey = written_field_key(spec)
            if fkey == key_field:
                continue
            writers.setdefault((flow.target.object.lower(), fkey), []).append((flow, spec))

    file = display_path(ownership_path)
    declared: dict[tuple[str, str], PrecedenceRule] = {}
    for rule in rules:
        k = (rule.object.lower(), rule.field.lower())
        if k in declared:
            issues.append(MappingIssue(file, rule.line, f"{rule.object}.{rule.field}", f"declared twice (also line {declared[k].line})"))
            continue
        declared[k] = rule

    precedence: dict[tuple[str, str], tuple[str, ...]] = {}
    for k, ws in sorted(writers.items()):
        names = [f.flow for f, _ in ws]
        rule = declared.get(k)
        if rule is None:
            if len(ws) > 1:
                first_flow, first_spec = ws[0]
                where = ", ".join(f"{f.flow} ({display_path(f.path)}:{s.line})" for f, s in ws)
                obj, fld = first_flow.target.object, first_spec.written_field
                for flow, spec in ws[1:]:
                    issues.append(
                        MappingIssue(
                            display_path(flow.path),
                            spec.line,
                            f"fields.{spec.target}",
                            f"{obj}.{fld} is written by several flows: {where}, and no precedence is declared; "
                            f"add to {file}:\n  {obj}:\n    {fld}: [{', '.join(names)}]   # highest precedence first",
                        )
                    )
            continue
        missing = [n for n in names if n not in rule.flows]
        extra = [n for n in rule.flows if n not in names]
        label = f"{rule.object}.{rule.field}"
        if missing:
            issues.append(
                MappingIssue(file, rule.line, label, f"does not list {', '.join(missing)}, which also write{'s' if len(missing) == 1 else ''} it; flows writing it: {', '.join(names)}")
            )
        if extra:
            issues.append(
                MappingIssue(file, rule.line, label, f"lists {', '.join(extra)}, which do{'es' if len(extra) == 1 else ''} not write it; flows writing it: {', '.join(names)}")
            )
        if not missing and not extra:
            precedence[k] = rule.flows
    for k, rule in declared.items():
        if k not in writers:
            issues.append(
                MappingIssue(file, rule.line, f"{rule.object}.{rule.field}", "no flow writes this field of this object")
            )
    return precedence, issues
