"""What the embeds domain stores: a tenant's embedding settings and the origins allowed to embed.

One `embed_settings` row per tenant holds its publishable key (`pk_…`, unique across tenants: the
widget API finds the tenant by it), its widget secret sealed with core/crypto, and the rest of its
settings as JSON (settings.py gives defaults and validates). The allowed origins are rows of their
own, so that a CORS preflight, which carries no key, can ask whether any tenant allows an origin.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow
from churnsaver.backend.core.ids import ordered_uuid


class EmbedSettingsRow(TenantOwned, Base):
    __tablename__ = "embed_settings"
    __table_args__ = (UniqueConstraint("publishable_key"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    publishable_key: Mapped[str] = mapped_column(String(64))
    widget_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_rotated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EmbedOrigin(TenantOwned, Base):
    """An origin (scheme://host[:port]) the tenant allows to embed the widget and call its API."""

    __tablename__ = "embed_origins"
    __table_args__ = (UniqueConstraint("tenant_id", "origin"), Index("ix_embed_origins_origin", "origin"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
