"""Vendor the JSON schemas of the custom resources boxoffice's manifests use (run by hand, output committed).

    python deploy/k8s/schemas/vendor.py

The schemas are the CRDs' openAPIV3Schema as published on the npm registry by the kubernetes-models
project (@kubernetes-models/<project>), which embeds each CRD's schema as a JSON object literal in its
resource module (``const schema = {...}``; later major versions ship compiled validators instead, so the
versions below are pinned to ones that carry the schema itself). Each file records its package, version
and module path. ``$ref`` to the Kubernetes ObjectMeta is kept; the test resolves it to kubernetes-validate's
ObjectMeta schema.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = {
    # package@version: {module path inside the package: vendored file}
    "@kubernetes-models/istio@2.3.0": {
        "networking.istio.io/v1beta1/VirtualService.js": "networking.istio.io_v1beta1_VirtualService.json",
        "networking.istio.io/v1beta1/DestinationRule.js": "networking.istio.io_v1beta1_DestinationRule.json",
    },
    "@kubernetes-models/keda@0.3.2": {
        "keda.sh/v1alpha1/ScaledObject.js": "keda.sh_v1alpha1_ScaledObject.json",
    },
    "@kubernetes-models/argo-cd@2.5.0": {
        "argoproj.io/v1alpha1/ApplicationSet.js": "argoproj.io_v1alpha1_ApplicationSet.json",
        "argoproj.io/v1alpha1/AppProject.js": "argoproj.io_v1alpha1_AppProject.json",
        "argoproj.io/v1alpha1/Application.js": "argoproj.io_v1alpha1_Application.json",
    },
    "@kubernetes-models/prometheus-operator@1.6.3": {
        "monitoring.coreos.com/v1/ServiceMonitor.js": "monitoring.coreos.com_v1_ServiceMonitor.json",
        "monitoring.coreos.com/v1/PrometheusRule.js": "monitoring.coreos.com_v1_PrometheusRule.json",
    },
}


def schema_literal(source: str) -> object:
    start = source.index("const schema = {") + len("const schema = ")
    end = source.index("\n};", start) + 2
    return json.loads(source[start:end])


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for spec, modules in SOURCES.items():
            tarball = subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", scratch, spec],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
            with tarfile.open(Path(scratch) / tarball) as archive:
                for module, target in modules.items():
                    member = archive.extractfile(f"package/{module}")
                    assert member is not None, module
                    schema = schema_literal(member.read().decode())
                    document = {"$comment": f"vendored from npm {spec}, package/{module} (deploy/k8s/schemas/vendor.py)", **schema}
                    (HERE / target).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
                    print(f"{spec} {module} -> {target}")


if __name__ == "__main__":
    main()
