"""Templates made from the recording connector's trigger and action (``test.stock``,
``test.record``), so these tests do not depend on any store connector."""

from __future__ import annotations

from engine.registry import Registry
from engine.templates.template import Template, load_template_text

STOCK_TEMPLATE = """\
id: stock-alert
name: Stock alert
description: Tell staff when stock is low
tags: [catalog]
inputs:
  threshold:
    type: integer
    label: Warn at or below
    min: 0
    max: 1000
    default: 5
  eta:
    type: duration
    default: 14d
  staff:
    type: emails
    default: [staff@example.com]
  prefix:
    type: string
    default: "Heads up"
trigger:
  type: test.stock
conditions:
  - {"<=": [{"var": "product.inventory_level"}, "[[ inputs.threshold ]]"]}
actions:
  - id: note
    use: test.record
    with:
      message: "[[ inputs.prefix ]]: {{ product.name }} back by \\
        {{ (now() + days([[ inputs.eta.days ]])) | date }}"
      count: "[[ inputs.threshold ]]"
      data:
        to: "[[ inputs.staff ]]"
        joined: "{{ [[ inputs.staff ]] | join(';') }}"
"""


def load(text: str, registry: Registry, file: str = "t.yaml") -> Template:
    templates, errors = load_template_text(text, file, registry)
    assert errors == [], errors
    assert len(templates) == 1
    return templates[0]


def errors_of(text: str, registry: Registry) -> list[str]:
    templates, errors = load_template_text(text, "t.yaml", registry)
    assert templates == []
    return [str(e) for e in errors]
