"""The request factory of the pipeline tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from ingest.config import RequestsConfig
from ingest.register import NewRequest, RegisteredRequest, register_request
from ingest.store.db import transaction
from ingest.store.models import RequestKind
from tests.pipeline.support import ALICE, SECRET


@pytest.fixture
def create(engine: Engine) -> Callable[..., RegisteredRequest]:
    def make(
        *responders: str,
        policy: str = "any",
        subject: str | None = "Expense claim",
        kind: RequestKind = RequestKind.APPROVAL,
    ) -> RegisteredRequest:
        with transaction(engine) as session:
            return register_request(
                session,
                NewRequest(
                    kind, "CR-1", responders or (ALICE,), subject, timedelta(days=1), policy
                ),
                secret=SECRET,
                config=RequestsConfig(),
            )

    return make
