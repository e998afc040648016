"""The risk service checks the subject itself: a read-only subject can neither set thresholds nor
queue training, whoever calls the service, and nothing is stored or enqueued for it."""

import pytest
from sqlalchemy import select

from churnsaver.backend.core.errors import PermissionDenied
from churnsaver.backend.risk import service
from churnsaver.backend.risk.settings import DEFAULT_SETTINGS, Thresholds
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.auth import AuthSubject, Scope
from tests.fixtures.factories import scoped_subject


async def outbox_actors(db, tenant_id) -> list[str]:
    async with db.system_session() as session:
        statement = select(OutboxJob.actor_name).where(OutboxJob.tenant_id == tenant_id)
        return list((await session.execute(statement)).scalars())


async def test_a_read_only_subject_cannot_set_thresholds_or_queue_training(db, tenant):
    read_only = scoped_subject(tenant.id, Scope.read)

    async with db.tenant_unit_of_work(tenant.id) as session:
        with pytest.raises(PermissionDenied, match="'write' scope"):
            await service.set_risk_thresholds(session, read_only, Thresholds(critical=0.9, high=0.6, medium=0.3))
        with pytest.raises(PermissionDenied, match="'write' scope"):
            await service.queue_training(session, read_only)

    async with db.tenant_session(tenant.id) as session:
        assert await service.risk_thresholds(session, read_only) == DEFAULT_SETTINGS
        assert await service.list_risk_models(session, read_only) == []
    assert await outbox_actors(db, tenant.id) == []


async def test_the_system_subject_sets_thresholds_and_enqueues_the_rescoring(db, tenant):
    thresholds = Thresholds(critical=0.9, high=0.6, medium=0.3)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await service.set_risk_thresholds(session, AuthSubject.system(tenant.id), thresholds)

    async with db.tenant_session(tenant.id) as session:
        config = await service.risk_thresholds(session, scoped_subject(tenant.id, Scope.read))
    assert (config.thresholds, config.is_default) == (thresholds, False)
    assert await outbox_actors(db, tenant.id) == ["risk.score_tenant"]


async def test_a_write_only_subject_cannot_read_risk(db, tenant):
    write_only = scoped_subject(tenant.id, Scope.write)
    async with db.tenant_session(tenant.id) as session:
        with pytest.raises(PermissionDenied, match="'read' scope"):
            await service.risk_distribution(session, write_only)
        with pytest.raises(PermissionDenied):
            await service.list_risk_models(session, write_only)
        with pytest.raises(PermissionDenied):
            await service.evaluate_active_model(session, write_only)
        with pytest.raises(PermissionDenied):
            service.export_scores(session, write_only)
