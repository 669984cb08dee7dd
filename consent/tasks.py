from celery import shared_task


@shared_task(name="consent.expire_requests")
def expire_requests() -> int:
    """Periodic (Celery beat): pending double opt-in and parental requests whose link expired."""
    from consent.services import consent_requests_expire

    return consent_requests_expire()
