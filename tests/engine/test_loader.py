from __future__ import annotations

from pathlib import Path

from engine.authoring.loader import load_file, load_paths
from engine.registry import Registry

GOOD = """\
id: good
name: Good recipe
trigger:
  type: test.stock
actions:
  - use: test.record
    with:
      message: hello
"""

BAD_PARAM = """\
id: bad-param
name: Bad parameter
trigger:
  type: test.stock
actions:
  - use: test.record
    with:
      message: fine
  - use: test.record
    with:
      message: ok
      count: -3
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_error_names_file_line_and_field_path(tmp_path: Path, registry: Registry) -> None:
    path = write(tmp_path, "x.yaml", BAD_PARAM)
    result = load_file(path, registry)
    assert result.recipes == []
    [error] = result.errors
    assert error.file == str(path)
    assert error.line == 12
    assert error.path == "actions[1].with.count"
    assert "greater than or equal to 0" in error.message
    assert str(error).startswith(f"{path}:12 actions[1].with.count: ")
    assert error.pointer == "/actions/1/with/count"


def test_one_bad_file_never_stops_the_others(tmp_path: Path, registry: Registry) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", BAD_PARAM)
    write(tmp_path, "c.yaml", "id: [unclosed\n")
    write(tmp_path, "d.yaml", GOOD.replace("id: good", "id: good-two"))
    result = load_paths([tmp_path], registry)
    assert sorted(r.id for _, r in result.recipes) == ["good", "good-two"]
    files = sorted(Path(e.file or "").name for e in result.errors)
    assert files == ["b.yaml", "c.yaml"]
    yaml_error = next(e for e in result.errors if (e.file or "").endswith("c.yaml"))
    assert yaml_error.line == 2 and "invalid YAML" in yaml_error.message


def test_unknown_action_trigger_and_field(tmp_path: Path, registry: Registry) -> None:
    text = GOOD.replace("type: test.stock", "type: test.nope").replace(
        "use: test.record", "use: test.nope"
    )
    text = text.replace("name: Good recipe", "name: Good recipe\nmood: happy")
    result = load_file(write(tmp_path, "x.yaml", text), registry)
    paths = {e.path: e for e in result.errors}
    assert set(paths) == {"mood"}  # shape errors come first; nothing else is resolved yet
    result = load_file(write(tmp_path, "y.yaml", text.replace("mood: happy\n", "")), registry)
    paths = {e.path: e for e in result.errors}
    assert set(paths) == {"trigger.type", "actions[0].use"}
    assert paths["trigger.type"].line == 4
    assert "unknown trigger type 'test.nope'" in paths["trigger.type"].message
    assert "test.record" in paths["actions[0].use"].message  # the known names are listed


def test_templated_fields_are_checked_when_rendered_but_bad_templates_now(
    tmp_path: Path, registry: Registry
) -> None:
    text = GOOD.replace("message: hello", 'message: hello\n      count: "{{ product.id }}"')
    assert load_file(write(tmp_path, "ok.yaml", text), registry).errors == []
    broken = GOOD.replace("message: hello", 'message: "{{ product.id "')
    [error] = load_file(write(tmp_path, "bad.yaml", broken), registry).errors
    assert error.path == "actions[0].with.message" and "invalid template" in error.message


def test_condition_errors_carry_their_path(tmp_path: Path, registry: Registry) -> None:
    text = GOOD.replace(
        "actions:", 'conditions:\n  - {"and": [true, {"frobnicate": [1]}]}\nactions:'
    )
    [error] = load_file(write(tmp_path, "x.yaml", text), registry).errors
    assert error.path.startswith("conditions[0]")
    assert "frobnicate" in error.message
    assert error.line == 6


def test_duplicate_ids_and_step_ids(tmp_path: Path, registry: Registry) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    result = load_paths([tmp_path], registry)
    assert len(result.recipes) == 1
    assert "also used in" in result.errors[0].message
    dup_steps = GOOD + "  - id: step1\n    use: test.record\n"
    [error] = load_file(
        write(tmp_path, "c.yaml", dup_steps.replace("id: good", "id: other")), registry
    ).errors
    assert "used twice" in error.message


def test_multiple_documents_in_one_file(tmp_path: Path, registry: Registry) -> None:
    text = GOOD + "---\n" + GOOD.replace("id: good", "id: second")
    result = load_file(write(tmp_path, "multi.yaml", text), registry)
    assert [r.id for _, r in result.recipes] == ["good", "second"]


def test_yaml_is_loaded_safely(tmp_path: Path, registry: Registry) -> None:
    text = "!!python/object/apply:os.system ['echo pwned']\n"
    result = load_file(write(tmp_path, "evil.yaml", text), registry)
    assert result.recipes == [] and "invalid YAML" in result.errors[0].message


def test_a_templated_field_passes_its_own_check_at_load_but_not_a_bad_literal(
    tmp_path: Path,
) -> None:
    from sous.container import connectors

    registry = Registry(connectors())
    raw = """\
id: raw
name: Raw request
trigger: {type: bigcommerce.product.updated}
actions:
  - use: bigcommerce.request
    with: {method: GET, path: "PATH"}
"""
    templated = raw.replace("PATH", "/v3/catalog/products/{{ product.id }}/images")
    assert load_file(write(tmp_path, "ok.yaml", templated), registry).errors == []
    escaping = raw.replace("PATH", "https://elsewhere.example/v3/x")
    [error] = load_file(write(tmp_path, "bad.yaml", escaping), registry).errors
    assert error.path == "actions[0].with.path" and "relative to the store's API" in error.message
