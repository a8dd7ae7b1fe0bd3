"""The contract-4 table, status by status."""

from __future__ import annotations

import grpc
import pytest

from courier.broker.status_actions import STATUS_ACTIONS, Action, action_for

C = grpc.StatusCode
EXPECTED = {
    C.OK: Action.COMMIT,
    C.ALREADY_EXISTS: Action.COMMIT,
    C.UNAVAILABLE: Action.RETRY,
    C.DEADLINE_EXCEEDED: Action.RETRY,
    C.RESOURCE_EXHAUSTED: Action.RETRY,
    C.ABORTED: Action.RETRY,
    C.INTERNAL: Action.RETRY,
    C.UNKNOWN: Action.RETRY,
    C.INVALID_ARGUMENT: Action.DEAD_LETTER,
    C.FAILED_PRECONDITION: Action.DEAD_LETTER,
    C.NOT_FOUND: Action.DEAD_LETTER,
    C.UNIMPLEMENTED: Action.DEAD_LETTER,
    C.CANCELLED: Action.DEAD_LETTER,
    C.PERMISSION_DENIED: Action.DEAD_LETTER,
    C.UNAUTHENTICATED: Action.DEAD_LETTER,
    C.OUT_OF_RANGE: Action.DEAD_LETTER,
    C.DATA_LOSS: Action.DEAD_LETTER,
}


@pytest.mark.parametrize("code", list(grpc.StatusCode))
def test_every_status_has_the_contract_action(code: grpc.StatusCode) -> None:
    assert action_for(code) is EXPECTED[code]


def test_the_table_lists_only_commit_and_retry() -> None:
    assert set(STATUS_ACTIONS.values()) == {Action.COMMIT, Action.RETRY}
