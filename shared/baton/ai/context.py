"""The state of one request as it moves through the pipeline, and the headers it earns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from baton.catalog import ModelInfo
from baton.clock import Deadline
from baton.kv.budget import Reservation
from baton.schema import ChatCompletionRequest
from baton.store.base import ApiKeyRecord

if TYPE_CHECKING:
    from baton.ai.router import Route


@dataclass
class RequestContext:
    """Everything the stages need and record about one request; no policy lives here."""

    request_id: str
    key: ApiKeyRecord
    request: ChatCompletionRequest
    deadline: Deadline
    started_at: float  # monotonic seconds, from the clock
    model: ModelInfo | None = None
    answered_by: str | None = None  # the adapter that answered: a provider or "simulated"
    dropped_params: list[str] = field(default_factory=list)
    degraded: set[str] = field(default_factory=set)
    cache_status: str = "bypass"
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    route: Route | None = None
    failed_attempts: list[str] = field(default_factory=list)  # "<model>:<why>", in order
    budget_reservation: Reservation | None = None

    @property
    def tenant(self) -> str:
        """Keys of one user share usage, budgets and cache scope."""
        return self.key.user

    def response_headers(self) -> dict[str, str]:
        """The pinned-contract headers this request has earned so far."""
        headers = {"x-request-id": self.request_id, "x-baton-cache": self.cache_status}
        if self.model is not None:
            headers["x-baton-model"] = self.model.id
        if self.answered_by is not None:
            headers["x-baton-provider"] = self.answered_by
        if self.dropped_params:
            headers["x-baton-dropped-params"] = ",".join(self.dropped_params)
        if self.route is not None and self.route.auto:
            headers["x-baton-task-type"] = self.route.classification.task_type
            headers["x-baton-complexity"] = self.route.classification.complexity
        if self.failed_attempts:
            headers["x-baton-attempts"] = ",".join(self.failed_attempts)
        if self.degraded:
            headers["x-baton-degraded"] = ",".join(sorted(self.degraded))
        headers.update(self.rate_limit_headers)
        return headers
