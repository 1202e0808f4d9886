"""Batches on every adapter: one unit of work, all or nothing, one change number."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

import pytest

from tests.conftest import Backend, stored_task
from tests.contract.test_sync import server_state
from tests.domain.conftest import FixedClock
from todo_core.commands import run
from todo_core.errors import BatchOperationFailed, NotFound, PreconditionFailed, ValidationFailed
from todo_core.task import TaskFields
from todo_core.use_cases.batch import (
    BATCH_MAX,
    CompleteTask,
    CreateTask,
    DeleteTask,
    MoveTask,
    PatchTask,
    Ref,
    ReplaceTask,
    run_batch,
)
from todo_core.use_cases.sync import changes_since
from todo_core.use_cases.tasks import complete_task, create_task, move_task, patch_task


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


async def change_number(backend: Backend, user: str) -> int:
    return (await changes_since(backend.feed, user, None, 1)).log.seq


async def test_a_batch_applies_every_operation_in_one_change(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    old = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Old"))
    doomed = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Doomed"))
    before = await change_number(backend, user)

    results = await run(
        backend.uow_factory(),
        run_batch,
        clock,
        user,
        [
            CreateTask(TaskFields(title="Trip"), ref="trip"),
            CreateTask(TaskFields(title="Pack"), ref="pack", parent=Ref("trip")),
            ReplaceTask(old.id, TaskFields(title="Renamed"), parent=Ref("trip")),
            PatchTask(Ref("pack"), {"priority": "high"}),
            MoveTask(old.id, after=None),
            CompleteTask(Ref("trip"), True),
            DeleteTask(doomed.id),
        ],
    )

    trip, pack, renamed = results[0], results[1], results[4]
    assert trip is not None and pack is not None and renamed is not None and results[6] is None
    assert await change_number(backend, user) == before + 1  # one unit of work: one change number
    stored_pack = await stored_task(backend.uow_factory, user, pack.id)
    assert (stored_pack.fields.parent_id, stored_pack.fields.priority.label, stored_pack.fields.completed) == (
        trip.id,
        "high",
        True,  # completing the trip completed its steps
    )
    stored_old = await stored_task(backend.uow_factory, user, old.id)
    assert (stored_old.fields.title, stored_old.fields.parent_id) == ("Renamed", trip.id)
    assert stored_old.position < stored_pack.position  # moved first among the trip's steps
    with pytest.raises(NotFound):
        await stored_task(backend.uow_factory, user, doomed.id)
    state = await server_state(backend, user)
    assert sorted(task["title"] for task in state.tasks.values()) == ["Pack", "Renamed", "Trip"]


async def test_a_failing_operation_at_the_end_applies_nothing(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    kept = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Kept"))
    before = await server_state(backend, user)
    number = await change_number(backend, user)

    with pytest.raises(BatchOperationFailed) as failed:
        await run(
            backend.uow_factory(),
            run_batch,
            clock,
            user,
            [
                CreateTask(TaskFields(title="New"), ref="new"),
                PatchTask(kept.id, {"title": "Changed"}),
                CompleteTask(Ref("new")),
                DeleteTask(kept.id),
                CompleteTask(kept.id, True, if_match=1),  # deleted two operations ago
            ],
        )

    assert failed.value.index == 4 and isinstance(failed.value.error, NotFound)
    after = await server_state(backend, user)
    assert (after.tasks, await change_number(backend, user)) == (before.tasks, number)


async def test_a_stale_version_fails_the_batch_with_the_operations_own_error(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="T"))

    with pytest.raises(BatchOperationFailed) as failed:
        await run(
            backend.uow_factory(),
            run_batch,
            clock,
            user,
            [PatchTask(task.id, {"title": "A"}, if_match=1), PatchTask(task.id, {"title": "B"}, if_match=1)],
        )

    assert failed.value.index == 1
    assert isinstance(failed.value.error, PreconditionFailed) and failed.value.error.current_version == 2
    assert (await stored_task(backend.uow_factory, user, task.id)).fields.title == "T"


async def test_a_batch_that_changes_nothing_takes_no_change_number(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Done", completed=True))
    number = await change_number(backend, user)

    results = await run(backend.uow_factory(), run_batch, clock, user, [CompleteTask(task.id, True)] * 2)

    assert results == [task, task]
    assert await change_number(backend, user) == number


async def test_another_users_task_is_not_found_in_a_batch(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    alice, bob = new_user(), new_user()
    bobs = await run(backend.uow_factory(), create_task, clock, bob, TaskFields(title="Bob's"))

    for task_id in (bobs.id, uuid4()):
        with pytest.raises(BatchOperationFailed) as failed:
            await run(backend.uow_factory(), run_batch, clock, alice, [DeleteTask(task_id)])
        assert isinstance(failed.value.error, NotFound)
    assert await stored_task(backend.uow_factory, bob, bobs.id) == bobs


async def test_refs_name_tasks_made_earlier_in_the_same_batch_only(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    cases = [
        ([DeleteTask(Ref("later")), CreateTask(TaskFields(title="L"), ref="later")], 0, "id"),
        ([CreateTask(TaskFields(title="A"), parent=Ref("a"), ref="a")], 0, "parent_id"),
        ([CreateTask(TaskFields(title="A"), ref="a"), MoveTask(Ref("a"), after=Ref("b"))], 1, "after"),
        ([CreateTask(TaskFields(title="A"), ref="a"), CreateTask(TaskFields(title="B"), ref="a")], 1, "ref"),
        ([CreateTask(TaskFields(title="A"), ref="")], 0, "ref"),
    ]
    for operations, index, field in cases:
        with pytest.raises(BatchOperationFailed) as failed:
            await run(backend.uow_factory(), run_batch, clock, user, operations)
        assert failed.value.index == index
        assert isinstance(failed.value.error, ValidationFailed)
        assert [error.field for error in failed.value.error.errors] == [field]
    assert (await server_state(backend, user)).tasks == {}


async def test_a_batch_holds_1_to_batch_max_operations(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    for count in (0, BATCH_MAX + 1):
        with pytest.raises(ValidationFailed):
            await run(backend.uow_factory(), run_batch, clock, user, [CreateTask(TaskFields(title="T"))] * count)
    assert (await server_state(backend, user)).tasks == {}


async def test_a_single_command_that_changes_nothing_takes_no_change_number_either(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Done", completed=True))
    number = await change_number(backend, user)

    assert await run(backend.uow_factory(), complete_task, clock, user, task.id, True) == task
    assert await run(backend.uow_factory(), patch_task, clock, user, task.id, {"title": "Done"}) == task
    assert await run(backend.uow_factory(), move_task, clock, user, task.id, after=None) == task

    assert await change_number(backend, user) == number
