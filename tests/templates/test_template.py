"""Loading templates: every problem is reported with file, line and field path."""

from __future__ import annotations

from pathlib import Path

from engine.authoring.loader import load_paths
from engine.registry import Registry
from engine.templates.template import template_files, validate_templates
from tests.templates.conftest import STOCK_TEMPLATE, errors_of, load


def test_a_good_template_loads_with_its_inputs_and_schema(registry: Registry) -> None:
    template = load(STOCK_TEMPLATE, registry)
    assert template.id == "stock-alert"
    assert template.tags == ["catalog"]
    assert list(template.inputs) == ["threshold", "eta", "staff", "prefix"]
    assert template.trigger == "test.stock"
    assert template.actions == ["test.record"]
    assert template.schema()["properties"]["threshold"]["title"] == "Warn at or below"
    assert template.samples() == {
        "threshold": 5,
        "eta": "14d",
        "staff": ["staff@example.com"],
        "prefix": "Heads up",
    }
    assert template.document()["inputs"]["threshold"] == {
        "type": "integer",
        "label": "Warn at or below",
        "default": 5,
        "min": 0,
        "max": 1000,
    }
    assert type(template.document()["inputs"]["threshold"]["max"]) is int


def test_unknown_and_undeclared_placeholders_are_placed(registry: Registry) -> None:
    text = STOCK_TEMPLATE.replace(
        '"[[ inputs.prefix ]]: ', '"[[ inputs.prefx ]] [[ input.prefix ]] [[ inputs.prefix ]]: '
    )
    assert errors_of(text, registry) == [
        "t.yaml:29 actions[0].with.message: '[[ inputs.prefx ]]' reads an input that is not "
        "declared "
        "(inputs: threshold, eta, staff, prefix)",
        "t.yaml:29 actions[0].with.message: unknown placeholder '[[ input.prefix ]]': "
        "placeholders read inputs, as [[ inputs.NAME ]]",
    ]


def test_unused_inputs_bad_parts_keys_and_ids_are_refused(registry: Registry) -> None:
    text = (
        STOCK_TEMPLATE.replace("id: stock-alert", "id: stock-[[ inputs.prefix ]]")
        .replace("inputs.eta.days", "inputs.eta.weeks")
        .replace("      data:\n", '      data:\n        "[[ inputs.prefix ]]": 1\n')
        .replace("  prefix:\n", "  unused:\n    type: boolean\n    default: false\n  prefix:\n")
    )
    errors = errors_of(text, registry)
    assert "t.yaml:1 id: 'id' cannot hold a placeholder" in errors
    assert any(
        e == "t.yaml:32 actions[0].with.message: a duration input has no part 'weeks'; it has "
        "days, hours, minutes, seconds"
        for e in errors
    )
    assert (
        "t.yaml:36 actions[0].with.data.[[ inputs.prefix ]]: a placeholder cannot stand in a key"
        in errors
    )
    assert "t.yaml:18 inputs.unused: input 'unused' is declared but never used" in errors


def test_quoted_placeholder_inside_an_expression_is_refused(registry: Registry) -> None:
    text = STOCK_TEMPLATE.replace("days([[ inputs.eta.days ]])", "days('[[ inputs.eta.days ]]')")
    assert errors_of(text, registry) == [
        "t.yaml:29 actions[0].with.message: inside {{ }} or {% %} a placeholder is a literal "
        "already: remove its quotes"
    ]


def test_bad_input_declarations_and_defaults_are_placed(registry: Registry) -> None:
    text = STOCK_TEMPLATE.replace(
        "    max: 1000\n    default: 5", "    max: 1000\n    default: 5000"
    ).replace("    type: duration", "    type: duration\n    min: 3")
    assert errors_of(text, registry) == [
        "t.yaml:11 inputs.threshold.default: must be ≤ 1000",
        "t.yaml:12 inputs.eta: value error, min and max apply to number and integer inputs only",
    ]


def test_recipe_made_with_samples_is_validated_and_blamed_on_the_input(registry: Registry) -> None:
    text = STOCK_TEMPLATE.replace("    min: 0\n", "    min: -5\n").replace(
        "default: 5\n", "default: -1\n"
    )
    assert errors_of(text, registry) == [
        "t.yaml:6 inputs.threshold: input should be greater than or equal to 0 "
        "(with the sample value, at actions[0].with.count)"
    ]
    wrong_action = STOCK_TEMPLATE.replace("use: test.record", "use: test.recrod")
    assert errors_of(wrong_action, registry)[0].startswith(
        "t.yaml:27 actions[0].use: unknown action 'test.recrod'"
    )


def test_validate_templates_checks_template_folders_and_manifests(
    registry: Registry, tmp_path: Path
) -> None:
    pack = tmp_path / "packs" / "demo"
    (pack / "templates").mkdir(parents=True)
    (pack / "templates" / "good.yaml").write_text(STOCK_TEMPLATE)
    (pack / "templates" / "again.yaml").write_text(STOCK_TEMPLATE)
    (pack / "templates" / "bad.yaml").write_text(
        STOCK_TEMPLATE.replace('inputs.threshold ]]"]}', 'inputs.nope ]]"]}')
    )
    (pack / "pack.yaml").write_text("name: demo\nversion: 1.0\nsous: '>=99'\n")
    (tmp_path / "plain.yaml").write_text("id: x\n")
    assert template_files([tmp_path]) == sorted((pack / "templates").glob("*.yaml"))
    result = validate_templates([tmp_path], registry)
    assert [t.id for t in result.templates] == ["stock-alert"]
    messages = [str(e) for e in result.errors]
    assert any(
        m.startswith(f"{pack}/templates/bad.yaml:24 conditions[0].<=[1]: '[[ inputs.nope ]]'")
        for m in messages
    )
    assert any("template id 'stock-alert' is also used in" in m for m in messages)
    assert (
        f"{pack}/pack.yaml:2 version: '1.0' is not a semantic version (MAJOR.MINOR.PATCH, e.g. "
        f"1.4.0)" in messages
    )
    assert len(messages) == 3, messages
    assert load_paths([tmp_path], registry).errors[0].file == str(
        tmp_path / "plain.yaml"
    )  # templates are skipped there
