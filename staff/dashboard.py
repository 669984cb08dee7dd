"""The consent analytics console: opt-in rates, grants and withdrawals, the effect of policy
versions, Global Privacy Control opt-outs and the time data-subject requests take, for the
privacy officer and marketers. Aggregates only, each under the minimum count suppressed
(staff/analytics.py); every chart's numbers download as CSV (`?csv=<chart>`)."""

import csv
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from staff.analytics import AFTER_WEEKS, OPT_IN_DEFINITION, Chart, Dashboard, Table, consent_dashboard_build
from staff.charts import chart_svg

PERMISSION = "staff.view_consent_dashboard"
DEFAULT_WEEKS = 26


class PeriodForm(forms.Form):
    weeks = forms.IntegerField(
        min_value=4, max_value=156, initial=DEFAULT_WEEKS, label="Weeks shown", help_text="From 4 to 156."
    )


def table_csv(table: Table, *, k: int) -> HttpResponse:
    """The numbers behind one chart; a suppressed cell is empty, and its row's note says why."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consent-analytics-{table.slug}.csv"'
    writer = csv.writer(response)
    writer.writerow([table.label_column, *table.columns, "note"])
    for label, row in zip(table.labels, table.rows, strict=True):
        hidden = [name for name, cell in zip(table.columns, row, strict=True) if cell.suppressed]
        note = f"suppressed (fewer than {k}): {', '.join(hidden)}" if hidden else ""
        writer.writerow([label, *(cell.csv for cell in row), note])
    return response


def _drawn(chart: Chart) -> dict[str, Any]:
    return {"chart": chart, "svg": chart_svg(chart)}


def consent_dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = PeriodForm(request.GET if "weeks" in request.GET else None)
    weeks = form.cleaned_data["weeks"] if form.is_valid() else DEFAULT_WEEKS
    k = settings.STAFF_ANALYTICS_MIN_COUNT
    dashboard: Dashboard = consent_dashboard_build(weeks=weeks, k=k, now=timezone.now())
    if "csv" in request.GET:
        table = dashboard.table(request.GET["csv"])
        if table is None:
            raise Http404("No such chart.")
        return table_csv(table, k=k)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Consent analytics",
        "form": form,
        "dashboard": dashboard,
        "purposes": [
            {"purpose": section.purpose, "charts": [_drawn(c) for c in section.charts], "versions": section.versions}
            for section in dashboard.purposes
        ],
        "gpc": _drawn(dashboard.gpc),
        "rights": _drawn(dashboard.rights),
        "definition": OPT_IN_DEFINITION,
        "after_weeks": AFTER_WEEKS,
        "weeks": weeks,
        "time_zone": settings.TIME_ZONE,
    }
    return TemplateResponse(request, "admin/staff/consent_dashboard.html", context)
