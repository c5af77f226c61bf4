"""Injected trouble: latency, server errors, dropped connections and load shedding.

Settings apply globally or to one company (a company's own settings replace the global ones
for calls that name it in `Procore-Company-Id`). Every random choice comes from one seeded
`random.Random`, drawn only when a rate is non-zero, so the same seed and the same sequence
of calls give the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class FaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0.0, ge=0)
    # Extra latency drawn uniformly from [0, latency_jitter_ms].
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    # 5xx for outages; 4xx (409, 422, ...) for "our request is wrong" answers. Install,
    # permission and rate-limit refusals have their own models, not this switch.
    error_status: int = Field(default=500, ge=400, le=599)
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    # The call is acted on, then its connection closes before the answer: the client cannot
    # tell whether a write happened (the case a lost answer to a create is about).
    lost_answer_rate: float = Field(default=0.0, ge=0, le=1)
    # OAuth endpoints are spared unless asked: most tests want faults on data calls only.
    include_oauth: bool = False


class Shedding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    active: bool = False
    retry_after_s: int = Field(default=30, ge=0)


class Action(Enum):
    PROCEED = "proceed"
    ERROR = "error"
    DROP = "drop"
    LOSE_ANSWER = "lose_answer"
    SHED = "shed"


@dataclass(frozen=True, slots=True)
class Decision:
    latency_s: float
    action: Action
    status: int = 0
    retry_after_s: int = 0


PROCEED = Decision(0.0, Action.PROCEED)


@dataclass(slots=True)
class FaultCounts:
    errors: int = 0
    drops: int = 0
    lost_answers: int = 0
    shed: int = 0
    delayed: int = 0


class FaultPlan:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.default = FaultSettings()
        self.by_company: dict[int, FaultSettings] = {}
        self.shedding = Shedding()
        self.shedding_by_company: dict[int, Shedding] = {}
        self.counts = FaultCounts()

    def settings_for(self, company_id: int | None) -> FaultSettings:
        if company_id is not None:
            own = self.by_company.get(company_id)
            if own is not None:
                return own
        return self.default

    def decide(self, company_id: int | None, *, rest: bool) -> Decision:
        shed = self._shedding_for(company_id)
        if rest and shed.active:
            self.counts.shed += 1
            return Decision(0.0, Action.SHED, 503, shed.retry_after_s)
        s = self.settings_for(company_id)
        if not rest and not s.include_oauth:
            return PROCEED
        if s is self.default and not self.by_company and _idle(s):
            return PROCEED  # the common case stays cheap
        latency = s.latency_ms / 1000.0
        if s.latency_jitter_ms:
            latency += self.rng.uniform(0.0, s.latency_jitter_ms) / 1000.0
        if latency:
            self.counts.delayed += 1
        if s.drop_rate or s.error_rate or s.lost_answer_rate:
            draw = self.rng.random()
            if draw < s.drop_rate:
                self.counts.drops += 1
                return Decision(latency, Action.DROP)
            if draw < s.drop_rate + s.error_rate:
                self.counts.errors += 1
                return Decision(latency, Action.ERROR, s.error_status)
            if draw < s.drop_rate + s.error_rate + s.lost_answer_rate:
                self.counts.lost_answers += 1
                return Decision(latency, Action.LOSE_ANSWER)
        return Decision(latency, Action.PROCEED)

    def _shedding_for(self, company_id: int | None) -> Shedding:
        if company_id is not None:
            own = self.shedding_by_company.get(company_id)
            if own is not None:
                return own
        return self.shedding


def _idle(s: FaultSettings) -> bool:
    return not (
        s.latency_ms or s.latency_jitter_ms or s.error_rate or s.drop_rate or s.lost_answer_rate
    )
