"""Describe JSON built from the org schema: describeGlobal entries, sObject describe, field describe.

Key sets and their alphabetical order follow real describe output (wire notes 2.1, 2.2). An object
loaded from a real describe file is answered with that file's own JSON (URLs rewritten to the version).
"""

from __future__ import annotations

import re
from typing import Any

from salesforce_emulator.schema import TEXT_TYPES, FieldDef, ObjectDef, OrgSchema

SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "date": "xsd:date", "datetime": "xsd:dateTime",
    "time": "xsd:time", "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double", "int": "xsd:int",
    "long": "xsd:long", "base64": "xsd:base64Binary", "anyType": "xsd:anyType", "address": "urn:address",
    "location": "urn:location", "complexvalue": "urn:JsonNode",
}
MASTER_RECORD_TYPE = "012000000000000AAA"


def _byte_length(f: FieldDef) -> int:
    if f.type in TEXT_TYPES:
        return 3 * f.length  # UTF-8: up to 3 bytes per character
    if f.type in {"id", "reference"}:
        return 18
    return 0


def field_describe(f: FieldDef) -> dict[str, Any]:
    """One ``fields[]`` entry with the full real key set, in alphabetical order."""
    if f.raw is not None:
        return f.raw
    numeric = f.type in {"double", "currency", "percent"}
    picklist = f.type in {"picklist", "multipicklist", "combobox"}
    return {
        "aggregatable": f.type not in {"textarea", "boolean", "multipicklist"},
        "aiPredictionField": False,
        "autoNumber": f.auto_number,
        "byteLength": _byte_length(f),
        "calculated": f.calculated,
        "calculatedFormula": None,
        "cascadeDelete": f.cascade_delete,
        "caseSensitive": f.case_sensitive,
        "compoundFieldName": None,
        "controllerName": None,
        "createable": f.createable,
        "custom": f.custom,
        "defaultValue": f.default_value if f.type == "boolean" else None,
        "defaultValueFormula": None,
        "defaultedOnCreate": f.defaulted_on_create,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": f.digits if f.type in {"int", "long"} else 0,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": f.external_id,
        "extraTypeInfo": "plaintextarea" if f.type == "textarea" else None,
        "filterable": f.filterable and f.type != "textarea",
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": not numeric and not f.auto_number and f.type not in {"textarea", "datetime", "multipicklist"},
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": f.id_lookup,
        "inlineHelpText": None,
        "label": f.label,
        "length": f.length if (f.type in TEXT_TYPES or f.type in {"id", "reference"}) else 0,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name_field,
        "namePointing": False,
        "nillable": f.nillable,
        "permissionable": f.custom and f.nillable,
        "picklistValues": [
            {"active": True, "defaultValue": value == f.default_value, "label": value, "validFor": None,
             "value": value}
            for value in f.picklist_values
        ] if picklist else [],
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision if numeric else 0,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": f.relationship_order,
        "restrictedDelete": False,
        "restrictedPicklist": f.restricted_picklist,
        "scale": f.scale if numeric else 0,
        "searchPrefilterable": f.type == "reference",
        "soapType": SOAP_TYPES.get(f.type, "xsd:string"),
        "sortable": f.type not in {"textarea", "multipicklist"},
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable,
        "writeRequiresMasterRead": False,
    }


def _urls(obj: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "listviews": f"{base}/listviews",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def _describe_urls(obj: ObjectDef, version: str, instance_url: str) -> dict[str, str]:
    urls = _urls(obj, version)
    return {
        "compactLayouts": urls["compactLayouts"],
        "rowTemplate": urls["rowTemplate"],
        "approvalLayouts": urls["approvalLayouts"],
        "uiDetailTemplate": f"{instance_url}/{{ID}}",
        "uiEditTemplate": f"{instance_url}/{{ID}}/e",
        "defaultValues": f"/services/data/v{version}/sobjects/{obj.name}/defaultValues?recordTypeId&fields",
        "listviews": urls["listviews"],
        "describe": urls["describe"],
        "uiNewRecord": f"{instance_url}/{obj.key_prefix}/e",
        "quickActions": urls["quickActions"],
        "layouts": urls["layouts"],
        "sobject": urls["sobject"],
    }


def global_entry(obj: ObjectDef, version: str) -> dict[str, Any]:
    """The describeGlobal ``sobjects[]`` entry of ``obj`` (keys alphabetical, ``urls`` last)."""
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": True,
        "custom": obj.custom,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": True,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": True,
        "mergeable": obj.name in {"Account", "Contact", "Lead", "Case"},
        "mruEnabled": True,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": True,
        "updateable": True,
        "urls": _urls(obj, version),
    }


def child_relationships(schema: OrgSchema, obj: ObjectDef) -> list[dict[str, Any]]:
    """``childRelationships[]``: every reference field of the org that points at ``obj``."""
    out = []
    for child, f in schema.children_of(obj.name):
        name = f.child_relationship_name
        if name is None:
            plural = re.sub(r"\W", "", child.label_plural or child.name)
            name = f"{plural}__r" if f.custom else plural
        out.append({
            "cascadeDelete": f.cascade_delete,
            "childSObject": child.name,
            "deprecatedAndHidden": False,
            "field": f.name,
            "junctionIdListNames": [],
            "junctionReferenceTo": [],
            "relationshipName": name,
            "restrictedDelete": False,
        })
    return out


def _with_version(value: Any, version: str) -> Any:
    if isinstance(value, str):
        return re.sub(r"/services/data/v\d+\.\d+/", f"/services/data/v{version}/", value)
    if isinstance(value, dict):
        return {k: _with_version(v, version) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_version(v, version) for v in value]
    return value


def object_describe(schema: OrgSchema, obj: ObjectDef, version: str, instance_url: str) -> dict[str, Any]:
    """The full sObject describe of ``obj`` (``GET /sobjects/{obj}/describe``)."""
    if obj.raw is not None:
        return _with_version(obj.raw, version)
    entry = global_entry(obj, version)
    return {
        "actionOverrides": [],
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "childRelationships": child_relationships(schema, obj),
        "compactLayoutable": True,
        "createable": True,
        "custom": obj.custom,
        "customSetting": False,
        "deepCloneable": False,
        "defaultImplementation": None,
        "deletable": True,
        "deprecatedAndHidden": False,
        "extendedBy": None,
        "extendsInterfaces": None,
        "feedEnabled": False,
        "fields": [field_describe(f) for f in obj.fields.values()],
        "hasSubtypes": False,
        "implementedBy": None,
        "implementsInterfaces": None,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": True,
        "listviewable": None,
        "lookupLayoutable": None,
        "mergeable": entry["mergeable"],
        "mruEnabled": True,
        "name": obj.name,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "queryable": True,
        "recordTypeInfos": [{
            "active": True,
            "available": True,
            "defaultRecordTypeMapping": True,
            "developerName": "Master",
            "master": True,
            "name": "Master",
            "recordTypeId": MASTER_RECORD_TYPE,
            "urls": {"layout": f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/{MASTER_RECORD_TYPE}"},
        }],
        "replicateable": True,
        "retrieveable": True,
        "searchLayoutable": True,
        "searchable": True,
        "sobjectDescribeOption": "FULL",
        "supportedScopes": [
            {"label": f"All {obj.label_plural.lower()}", "name": "everything"},
            {"label": f"My {obj.label_plural.lower()}", "name": "mine"},
        ],
        "triggerable": True,
        "undeletable": True,
        "updateable": True,
        "urls": _describe_urls(obj, version, instance_url),
    }


def global_describe(schema: OrgSchema, version: str) -> dict[str, Any]:
    """The describeGlobal body (``GET /sobjects``)."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [
            _with_version({k: obj.raw[k] for k in global_entry(obj, version) if k in obj.raw}, version)
            if obj.raw is not None else global_entry(obj, version)
            for obj in schema.objects.values()
        ],
    }
