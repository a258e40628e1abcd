"""``for_each`` steps: their sub-steps run once per item of a list, durably.

The list is rendered once, when the step starts, cut to ``max_items`` (or refused, with
``on_overflow: fail``) and stored in the step's trace row (status ``running``) with the run's
state. Each sub-step of each item then has a trace row of its own, keyed by an index past the
recipe's steps (:func:`row_index`) and named ``<step>[<item>].<sub-step>``; that name is also
the sub-step's ``step_id``, so its idempotency key (``run:each_line[3].tag``) is per item.

After a restart, :func:`resume` rebuilds the progress from those rows: items whose sub-steps
have committed trace rows are not run again; the first sub-step without one runs (again, with
the same key, if its action ran but its trace did not commit). When the last item is done the
step's row gets its output: ``count``, ``total``, ``truncated`` (with a ``note``) and ``results``,
one object per item with its sub-steps' outputs by id (``steps.each_line.results[0].tag``).
"""

from __future__ import annotations

from typing import Any

from engine.model.recipe import DEFAULT_MAX_ITEMS, MAX_ITEMS, MAX_SUB_STEPS, Step
from engine.model.run import EachProgress
from engine.model.status import DONE, StepStatus

ROW_SPAN = 100_000
"""Trace rows of the sub-steps of the ``for_each`` at index ``i`` are numbered from
``(i + 1) * ROW_SPAN``: past every step of a recipe (at most 100)."""


def row_index(index: int, item: int, sub: int) -> int:
    """The trace row index of sub-step ``sub`` of item ``item`` of the ``for_each`` at ``index``."""
    return (index + 1) * ROW_SPAN + item * (MAX_SUB_STEPS + 1) + sub


def position(index: int, row: int) -> tuple[int, int] | None:
    """``(item, sub)`` of a sub-step row of the ``for_each`` at ``index``, or ``None``."""
    offset = row - (index + 1) * ROW_SPAN
    if not 0 <= offset < MAX_ITEMS * (MAX_SUB_STEPS + 1):
        return None
    return divmod(offset, MAX_SUB_STEPS + 1)


def is_sub_row(row: int) -> bool:
    return row >= ROW_SPAN


def named(step: Step, item: int, sub: Step) -> Step:
    """The sub-step as item ``item`` runs it: its id is ``<step>[<item>].<sub>``."""
    return sub.model_copy(update={"id": f"{step.id}[{item}].{sub.id}"})


def start(step: Step, rendered: Any) -> EachProgress:
    """The progress of a ``for_each`` whose list rendered to ``rendered``; raises ``ValueError``
    for a value that is not a list, or too long a list with ``on_overflow: fail``."""
    if isinstance(rendered, dict):
        rendered = list(rendered.values())
    if not isinstance(rendered, list | tuple):
        raise ValueError(f"for_each: expected a list, got {type(rendered).__name__}")
    cap = step.max_items or DEFAULT_MAX_ITEMS
    if len(rendered) > cap and step.on_overflow == "fail":
        raise ValueError(f"for_each: {len(rendered)} items, more than max_items ({cap})")
    return EachProgress(items=list(rendered[:cap]), total=len(rendered))


def trace_input(step: Step, each: EachProgress) -> dict[str, Any]:
    """The ``for_each`` row's input: the items as rendered (what a resumed run goes through)."""
    return {
        "for_each": each.items,
        "total": each.total,
        "max_items": step.max_items or DEFAULT_MAX_ITEMS,
    }


def advance(step: Step, each: EachProgress) -> None:
    """Move past the sub-step just done (or skipped past)."""
    assert step.steps is not None
    each.sub += 1
    if each.sub == len(step.steps):
        each.sub = 0
        each.item += 1
        if each.item < len(each.items):
            each.done.append({})


def output(each: EachProgress) -> dict[str, Any]:
    """The step's output once every item is done."""
    out: dict[str, Any] = {
        "count": len(each.items),
        "total": each.total,
        "truncated": each.total > len(each.items),
        "results": each.done[: len(each.items)],
    }
    if out["truncated"]:
        out["note"] = f"{each.total} items; only the first {len(each.items)} ran (max_items)"
    return out


def resume(step: Step, index: int, row: Any, sub_rows: list[Any]) -> tuple[EachProgress, Any]:
    """The progress of the ``for_each`` at ``index`` from its ``running`` row and its sub-step
    rows (by index); with the row of the sub-step to run next, if it has one (a retry)."""
    assert step.steps is not None
    stored = row.input or {}
    each = EachProgress(
        items=list(stored.get("for_each") or []),
        total=int(stored.get("total") or 0),
        started_at=row.started_at,
    )
    pending: Any = None
    for sub_row in sorted(sub_rows, key=lambda r: r.index):
        where = position(index, sub_row.index)
        if where is None or where < (each.item, each.sub):
            continue
        if where != (each.item, each.sub):  # rows are written in order: none is missing
            break
        if sub_row.status in DONE or sub_row.status == StepStatus.FAILED:
            if sub_row.status in DONE and sub_row.output is not None:
                each.done[each.item][step.steps[each.sub].id or ""] = sub_row.output
            advance(step, each)
        else:
            pending = sub_row
    return each, pending
