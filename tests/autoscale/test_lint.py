"""Manifest lint: two autoscalers on one workload, manifests that do not parse."""

from __future__ import annotations

import pytest

from cognitionos.autoscale import lint_manifests

pytest.importorskip("yaml")

HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: {name}, namespace: shop}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}
  maxReplicas: {max}
"""
KEDA = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web-keda, namespace: shop}
spec:
  scaleTargetRef: {name: web}
  triggers: [{type: cpu, metricType: Utilization, metadata: {value: "60"}}]
"""


def test_two_autoscalers_on_one_workload():
    text = "---".join([HPA.format(name="web", target="web", max=5), KEDA])
    problems = lint_manifests(text)
    assert problems == [
        "Deployment shop/web is targeted by 2 autoscalers: "
        "HorizontalPodAutoscaler web, ScaledObject web-keda"
    ]


def test_distinct_targets_are_fine_and_bad_manifests_reported():
    ok = "---".join(
        [HPA.format(name="a", target="a", max=5), HPA.format(name="b", target="b", max=5)]
    )
    assert lint_manifests(ok) == []
    bad = HPA.format(name="c", target="c", max="many")
    assert lint_manifests(bad) == [
        "HorizontalPodAutoscaler shop/c: spec.maxReplicas must be an integer, got 'many'"
    ]
    assert lint_manifests("a: [")[0].startswith("not valid YAML")


def test_lint_cli(tmp_path):
    import json

    from click.testing import CliRunner

    from cognitionos.cli import main

    path = tmp_path / "m.yaml"
    path.write_text("---".join([HPA.format(name="web", target="web", max=5), KEDA]))
    r = CliRunner().invoke(main, ["autoscale", "lint", str(path), "--json"])
    assert r.exit_code == 1
    assert len(json.loads(r.stdout)["problems"]) == 1
