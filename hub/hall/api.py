"""JSON API for partner subscriptions to the release hall (admins of the whole matrix).

``POST /api/v1/partners`` {"name", "url", "secret"} registers a partner site; the secret is
write-only (encrypted at rest, never returned). The URL passes the webhook connector's checks
(http(s), and unless ``GOVHUB_WEBHOOK_ALLOW_PRIVATE`` no loopback/private target): else 422.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session, col, select

from hub.auditlog.service import audit
from hub.errors import NotFound
from hub.hall import partners
from hub.hall.models import PartnerCreate, PartnerPublic
from hub.orgs.models import Org
from hub.sqltypes import Id
from hub.users.rules import Action
from hub.web.deps import Principal, PrincipalDep, SessionDep, SettingsDep, WhoDep

router = APIRouter(prefix="/api/v1/partners", tags=["release hall"])


def _require_matrix_admin(session: Session, principal: Principal) -> Org:
    """Partners receive the whole matrix's entries: managing them takes the root's admin."""
    root = session.exec(
        select(Org).where(col(Org.parent_id).is_(None)).order_by(col(Org.id))
    ).first()
    if root is None:
        raise NotFound("还没有机构：请先导入行政区划")
    principal.require(Action.account_manage, root)
    return root


@router.post(
    "", summary="Register a partner webhook", status_code=201, response_model=PartnerPublic
)
def create_partner(
    data: PartnerCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> PartnerPublic:
    root = _require_matrix_admin(session, principal)
    partner = partners.create_partner(
        session=session, data=data, created_by=principal.user.id, settings=settings
    )
    audit(
        session,
        who,
        "partner.create",
        "partner",
        partner.id,
        org_id=root.id,
        summary=f"合作网站「{partner.name}」订阅发布厅：{partner.url}",
    )
    session.commit()
    return partners.to_public(partner)


@router.get("", summary="List partner webhooks", response_model=list[PartnerPublic])
def list_partners(principal: PrincipalDep, session: SessionDep) -> list[PartnerPublic]:
    _require_matrix_admin(session, principal)
    return partners.list_partners(session=session)


@router.delete("/{partner_id}", summary="Stop sending to a partner", response_model=PartnerPublic)
def delete_partner(
    partner_id: Id, principal: PrincipalDep, who: WhoDep, session: SessionDep
) -> PartnerPublic:
    root = _require_matrix_admin(session, principal)
    partner = partners.delete_partner(session=session, partner_id=partner_id)
    audit(
        session,
        who,
        "partner.delete",
        "partner",
        partner.id,
        org_id=root.id,
        summary=f"合作网站「{partner.name}」停止订阅",
    )
    session.commit()
    return partners.to_public(partner)
