"""Small helpers the editor's pages call while typing."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from connectors.weibo_rules import TEXT_MAX, weibo_length
from hub.web.deps import PrincipalDep

router = APIRouter(prefix="/api/v1/tools", tags=["tools"])


class CountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=100_000)


class CountPublic(BaseModel):
    count: int  # counted characters by Weibo's rule (the connector's own function)
    limit: int


@router.post("/weibo-count", summary="Count text as Weibo does", response_model=CountPublic)
def weibo_count(body: CountBody, principal: PrincipalDep) -> CountPublic:
    return CountPublic(count=weibo_length(body.text), limit=TEXT_MAX)
