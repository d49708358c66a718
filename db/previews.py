"""Stored upload previews: an uploaded CSV is checked and kept server-side under a random key; the confirm step
names the key (``take_preview``) instead of posting the file again. A preview belongs to the user who uploaded it and
to one campaign, lasts ``PREVIEW_LIFETIME``, and is deleted with the write that confirms it. Like ``db.service``,
functions take an open ``Session`` and do not commit.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlmodel import Session, delete, select

from db.engine import NotFoundError
from db.tables import Campaign, UploadPreview, User, utc_now

PREVIEW_LIFETIME = timedelta(minutes=30)


def store_preview(session: Session, user: User, campaign: Campaign, filename: str, csv_text: str) -> UploadPreview:
    """Keep an uploaded file for its confirmation; expired previews (anyone's) are swept first."""
    now = utc_now()
    session.exec(delete(UploadPreview).where(UploadPreview.expires_at < now))
    preview = UploadPreview(key=secrets.token_urlsafe(24), user_id=user.id, campaign_id=campaign.id, filename=filename[:255],
                            csv_text=csv_text, created_at=now, expires_at=now + PREVIEW_LIFETIME)
    session.add(preview)
    session.flush()
    return preview


def take_preview(session: Session, key: str, user: User, campaign: Campaign) -> UploadPreview:
    """The user's unexpired preview ``key`` for ``campaign``; ``NotFoundError`` (the same answer for a key that
    never existed, expired, was confirmed already, or is someone else's) otherwise."""
    preview = session.exec(select(UploadPreview).where(
        UploadPreview.key == key, UploadPreview.user_id == user.id, UploadPreview.campaign_id == campaign.id,
        UploadPreview.expires_at >= utc_now())).first()
    if preview is None:
        raise NotFoundError(f"no upload preview {key[:12]!r} of yours for this campaign: it expired after "
                            f"{int(PREVIEW_LIFETIME.total_seconds() // 60)} minutes or was confirmed already; upload the file again")
    return preview


def discard_preview(session: Session, preview: UploadPreview) -> None:
    session.delete(preview)
