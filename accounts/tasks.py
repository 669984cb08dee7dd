"""Celery tasks of the accounts app: thin, idempotent, calling the services."""

from typing import Any

from celery import shared_task
from django.conf import settings


@shared_task(name="accounts.social_refresh_run")
def social_refresh_run() -> dict[str, Any]:
    """Periodic (Celery beat): purge provider data past its maximum age, then claim a bounded
    batch of due links and refresh each in a task of its own. Claiming is a conditional update,
    so two runs at once never take the same link."""
    from accounts.social.refresh import social_links_claim, social_links_expire

    batch = settings.SOCIAL_REFRESH_BATCH
    expired = social_links_expire(limit=batch)
    claimed = social_links_claim(limit=batch)
    for account_id in claimed:
        social_link_refresh.delay(account_id)
    return {"expired": expired, "claimed": len(claimed)}


@shared_task(name="accounts.social_link_refresh")
def social_link_refresh(account_id: int) -> str:
    """Refresh one link. A provider's failure is recorded and retried on the link's own backoff
    schedule (accounts/social/refresh.py); running it twice does no harm."""
    from accounts.social.refresh import social_link_refresh as refresh

    return refresh(account_id=account_id).code
