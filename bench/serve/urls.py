"""The product's URLs, and `/bench/bare/<pairwise>/`: a bare DRF endpoint doing one indexed
lookup (a pairwise id by its unique index), without authentication, permission or throttling:
the baseline the consent check is measured against (bench/bench_partners_consent.py)."""

import os
import uuid

from django.urls import path
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401 (served the same way)
from config.urls import urlpatterns as product
from partners.models import PairwiseId

_CLIENT = uuid.UUID(os.environ.get("BENCH_CLIENT_ID", "00000000-0000-0000-0000-000000000000"))


class BareView(APIView):
    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)
    throttle_classes = ()

    def get(self, request: Request, person: str) -> Response:
        found = PairwiseId.objects.filter(client_id=_CLIENT, pairwise=person)
        subject = found.values_list("subject_id", flat=True).first()
        return Response({"person": person, "found": subject is not None})


urlpatterns = [path("bench/bare/<slug:person>/", BareView.as_view()), *product]
