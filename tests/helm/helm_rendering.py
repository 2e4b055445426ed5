"""Render, lint and validate the Helm chart offline, without a helm binary.

Rendering and linting go through helm-python-sdk, which embeds Helm's own Go
library; Kubernetes objects are checked with kubernetes-validate's strict schemas.
KEDA objects are custom resources those schemas do not know, so they are checked
here against a schema of the fields the chart relies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "fedirelay"
PRODUCTION_VALUES_FILE = CHART_DIR / "ci" / "production-values.yaml"
RELEASE_NAME = "relay"
NAMESPACE = "fedi"

KEDA_API_VERSION = "keda.sh/v1alpha1"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class RenderedChart:
    """The objects one `helm template` run produces, plus the install notes."""

    manifests: list[Manifest]
    notes: str

    def all_of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name: str) -> Manifest:
        matches = [m for m in self.all_of_kind(kind) if m["metadata"]["name"] == name]
        if len(matches) != 1:
            found = [m["metadata"]["name"] for m in self.all_of_kind(kind)]
            raise LookupError(f"expected one {kind} named {name!r}, found {found}")
        return matches[0]

    def has(self, kind: str, name: str) -> bool:
        return any(m["metadata"]["name"] == name for m in self.all_of_kind(kind))


def values_from_file(path: Path) -> dict[str, Any]:
    """Parse a values file the way Helm's -f does."""
    import helm_python

    return helm_python.values_from_yaml(path.read_text())


def production_values() -> dict[str, Any]:
    return values_from_file(PRODUCTION_VALUES_FILE)


def render(values: dict[str, Any] | None = None) -> RenderedChart:
    """Render the chart as an install of release `relay` in namespace `fedi`."""
    import helm_python

    with helm_python.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(values, name=RELEASE_NAME, namespace=NAMESPACE, is_install=True)
    manifests: list[Manifest] = []
    notes = ""
    for template_path, text in sorted(rendered.items()):
        if template_path.endswith("NOTES.txt"):
            notes = text
            continue
        if not template_path.endswith((".yaml", ".yml")):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return RenderedChart(manifests=manifests, notes=notes)


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """`helm lint --strict` of the chart; returns Helm's report."""
    import helm_python

    return helm_python.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE)


def minimum_kubernetes_version() -> str:
    """The lowest Kubernetes version Chart.yaml admits, e.g. "1.25.0"."""
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    constraint: str = chart["kubeVersion"]
    return constraint.removeprefix(">=").split("-")[0].strip()


def validate_strictly(manifest: Manifest, kubernetes_version: str) -> None:
    """Raise if the object does not match Kubernetes' schema, unknown fields included."""
    import kubernetes_validate

    kubernetes_validate.validate(manifest, kubernetes_version, strict=True)


def is_keda_object(manifest: Manifest) -> bool:
    return manifest["apiVersion"] == KEDA_API_VERSION


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}

# The ScaledObject fields the chart sets, as KEDA's CRD types them: trigger
# metadata is a map of strings, replica counts and periods are integers.
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": KEDA_API_VERSION},
        "kind": {"const": "ScaledObject"},
        "metadata": _OBJECT_METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "metadata": _STRING_MAP,
                            "authenticationRef": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
}

TRIGGER_AUTHENTICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": KEDA_API_VERSION},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": _OBJECT_METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["secretTargetRef"],
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["parameter", "name", "key"],
                        "properties": {
                            "parameter": {"type": "string"},
                            "name": {"type": "string"},
                            "key": {"type": "string"},
                        },
                    },
                }
            },
        },
    },
}


def validate_keda_object(manifest: Manifest) -> None:
    """Raise if a KEDA object has a field the chart does not mean to set, or a wrong type."""
    import jsonschema

    schema = {
        "ScaledObject": SCALED_OBJECT_SCHEMA,
        "TriggerAuthentication": TRIGGER_AUTHENTICATION_SCHEMA,
    }[manifest["kind"]]
    jsonschema.validate(manifest, schema)
