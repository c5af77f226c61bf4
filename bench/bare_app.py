"""(b) The floor: a bare FastAPI endpoint that checks the Authorization header, validates a
Procore v2.0 webhook into a pydantic body model and answers 202, with no I/O at all.

Run by bench/ingest.py as `uvicorn bench.bare_app:app`. The naive stack (naive_app.py) reuses
the same model and check, so the three servers differ only in what they do with the event.
"""

from __future__ import annotations

import hmac
import os
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, status
from pydantic import BaseModel, ConfigDict

WEBHOOK_TOKEN = os.environ.get("BENCH_WEBHOOK_TOKEN", "bench-webhook-token").encode()


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    source_user_id: int | None = None
    source_company_id: int | None = None
    source_project_id: int | None = None
    source_operation_id: int | str | None = None
    source_application_id: str | None = None


class ProcoreWebhook(BaseModel):
    """Procore's v2.0 payload (FACTS.md §1); unknown fields are kept, as the service does."""

    model_config = ConfigDict(extra="allow")

    id: int
    ulid: str
    timestamp: datetime
    metadata: Metadata | None = None
    user_id: int | None = None
    company_id: int
    project_id: int | None = None
    api_version: str | None = None
    event_type: str
    resource_name: str
    resource_id: int


def check_authorization(authorization: str | None) -> None:
    if authorization is None or not hmac.compare_digest(authorization.encode(), WEBHOOK_TOKEN):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bad Authorization")


app = FastAPI(title="bench: bare receiver")


@app.post("/webhooks/procore", status_code=status.HTTP_202_ACCEPTED)
async def receive(
    event: ProcoreWebhook, authorization: Annotated[str | None, Header()] = None
) -> dict[str, str]:
    check_authorization(authorization)
    return {"status": "accepted", "ulid": event.ulid}
