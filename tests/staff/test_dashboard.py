"""The consent analytics console: its figures on a ledger seeded at chosen times, the minimum
count in the page and the CSV files, who may open it, and that it shows no one."""

import csv
import io
import re
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.models import Method
from consent.services import consent_gpc_apply, consent_grant, consent_refuse, consent_withdraw, policy_version_publish
from rights.models import Channel, Kind, RightsRequest, Status
from staff.analytics import week_start
from tests.factories import PurposeFactory

URL = reverse("admin:consent_analytics")
NOW = timezone.now()
W0 = week_start(NOW) - timedelta(weeks=10)  # the Monday the seeded history starts


def week(n: int, days: float = 0, hours: float = 9) -> datetime:
    """A moment in the nth week of the seeded history."""
    return timezone.make_aware(datetime(W0.year, W0.month, W0.day)) + timedelta(weeks=n, days=days, hours=hours)


@contextmanager
def at(moment: datetime):
    """The services record the time they run at: run them then."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def grant(subject, purpose, when):
    with at(when):
        return consent_grant(subject_id=subject, purpose=purpose, method=Method.WEB_FORM, age=30)


@pytest.fixture
def seeded(db):
    """Purpose "newsletter": 5 grants and 2 refusals in week 0; one withdrawal in week 1; a
    material v2 in week 2 (the grants under v1 stop counting); 3 renewals and 3 new grants in
    week 3. Purpose "ad-sharing" (sale/sharing): GPC opts 4 people out in week 4, 1 in week 5.
    Rights: 5 access requests completed in 1, 2, 3, 4 and 10 days; 2 erasures in 5 and 6."""
    people = [uuid.uuid4() for _ in range(16)]
    with at(week(0, hours=8)):
        newsletter = PurposeFactory.create(slug="newsletter", name="Newsletter", published=False)
        policy_version_publish(purpose="newsletter", label="v1", text="First.\n", effective_from=week(0, hours=8))
        sharing = PurposeFactory.create(slug="ad-sharing", name="Ad sharing", is_sale_or_sharing=True, published=False)
        policy_version_publish(purpose="ad-sharing", label="v1", text="Sharing.\n", effective_from=week(0, hours=8))
    a = people[:5]
    for i, person in enumerate(a):
        grant(person, "newsletter", week(0, hours=10 + i))
    for i, person in enumerate(people[5:7]):
        with at(week(0, days=2, hours=i)):
            consent_refuse(subject_id=person, purpose="newsletter", method=Method.WEB_FORM)
    with at(week(1, days=3)):
        consent_withdraw(subject_id=a[0], purpose="newsletter", method=Method.WEB_FORM)
    with at(week(2, days=1)):
        policy_version_publish(
            purpose="newsletter", label="v2", text="Second.\n", effective_from=week(2, days=1), is_material=True
        )
    for i, person in enumerate(a[1:4] + people[7:10]):
        grant(person, "newsletter", week(3, hours=10 + i))
    for i, person in enumerate(people[10:13]):
        grant(person, "ad-sharing", week(4, hours=i))
    for i, person in enumerate(people[10:14]):
        with at(week(4, days=1, hours=i)):
            consent_gpc_apply(subject_id=person)
    with at(week(5, days=1)):
        consent_gpc_apply(subject_id=people[14])
    for days in (1, 2, 3, 4, 10):
        person = uuid.uuid4()
        people.append(person)
        received = week(6)
        RightsRequest.objects.create(
            subject_id=person,
            kind=Kind.ACCESS,
            channel=Channel.PORTAL,
            received_at=received,
            due_at=received + timedelta(days=30),
            status=Status.COMPLETED,
            completed_at=received + timedelta(days=days),
        )
    for days in (5, 6):
        person = uuid.uuid4()
        people.append(person)
        RightsRequest.objects.create(
            subject_id=person,
            kind=Kind.ERASURE,
            channel=Channel.PORTAL,
            received_at=week(6),
            due_at=week(6) + timedelta(days=30),
            status=Status.COMPLETED,
            completed_at=week(6) + timedelta(days=days),
        )
    return {"people": people, "newsletter": newsletter, "sharing": sharing}


def rows(response) -> dict[str, dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    return {row[next(iter(row))]: row for row in table}


def label(n: int) -> str:
    return (W0 + timedelta(weeks=n)).isoformat()


@pytest.fixture
def officer(client, member_of):
    client.force_login(member_of("Privacy officer"))
    return client


def test_the_figures_replay_the_ledger(officer, seeded, settings):
    settings.STAFF_ANALYTICS_MIN_COUNT = 2

    optin = rows(officer.get(URL, {"csv": "optin-newsletter"}))
    assert officer.get(URL, {"csv": "optin-newsletter"})["Content-Disposition"] == (
        'attachment; filename="consent-analytics-optin-newsletter.csv"'
    )
    rate = "opt-in rate (%)"
    assert optin[label(-1)] == {"week": label(-1), rate: "", "note": ""}  # nobody had chosen: no rate
    # Each count to the nearest multiple of k (2) first: 5 of 7 is shown as 6 of 8.
    assert optin[label(0)][rate] == "75.0"  # 5 of 7
    assert optin[label(1)][rate] == "50.0"  # 4 of 7
    # v2 is material: the four grants under v1 stop counting from the day it takes effect.
    assert optin[label(2)][rate] == "0.0"  # 0 of 7
    # Three renewed and three granted for the first time; the fifth v1 grant still does not count.
    assert optin[label(3)][rate] == "60.0"  # 6 of 10
    assert optin[label(9)][rate] == "60.0"

    activity = rows(officer.get(URL, {"csv": "activity-newsletter"}))
    assert [activity[label(0)][c] for c in ("grants", "renewals", "withdrawals", "refusals")] == ["5", "0", "0", "2"]
    assert activity[label(0)]["note"] == ""
    assert [activity[label(1)][c] for c in ("grants", "withdrawals")] == ["0", ""]
    assert activity[label(1)]["note"] == "suppressed (fewer than 2): withdrawals"
    assert [activity[label(3)][c] for c in ("grants", "renewals")] == ["3", "3"]

    versions = rows(officer.get(URL, {"csv": "versions-newsletter"}))
    v1, v2 = versions["v1"], versions["v2"]
    totals = ("grants (rounded)", "renewals (rounded)", "withdrawals (rounded)", "refusals (rounded)")
    assert (v1["material"], *(v1[c] for c in totals)) == ("no", "6", "0", "", "2")  # 5 grants: 6
    assert v1["opt-in rate the week before (%)"] == ""  # nobody had chosen yet: no rate
    assert v1["opt-in rate 4 weeks after (%)"] == "60.0"
    assert (v2["material"], v2["grants (rounded)"], v2["renewals (rounded)"]) == ("yes", "4", "4")
    assert v2["takes effect"] == timezone.localtime(week(2, days=1)).isoformat()[:16].replace("T", " ")
    assert v2["opt-in rate the week before (%)"] == "50.0"
    assert v2["opt-in rate 4 weeks after (%)"] == "60.0"

    gpc = rows(officer.get(URL, {"csv": "gpc"}))
    assert (gpc[label(4)]["people"], gpc[label(4)]["opt-outs (rounded)"]) == ("4", "4")
    assert (gpc[label(5)]["people"], gpc[label(5)]["opt-outs (rounded)"]) == ("", "")
    assert gpc[label(3)]["people"] == "0"

    rights = rows(officer.get(URL, {"csv": "rights"}))
    access = rights["Access"]
    received, completed = "received (rounded)", "completed (rounded)"
    assert (access[received], access[completed], access["median days"], access["90th percentile days"]) == (
        "6",  # 5, rounded
        "6",
        "3.0",
        "10.0",
    )
    erasure = rights["Erasure"]
    assert (erasure[received], erasure["median days"], erasure["90th percentile days"]) == ("2", "5.0", "6.0")
    assert rights["Objection"][received] == "0" and rights["Objection"]["median days"] == ""


def test_the_page_draws_each_chart_with_its_title_axes_and_numbers(officer, seeded, settings):
    settings.STAFF_ANALYTICS_MIN_COUNT = 2
    page = officer.get(URL).content.decode()
    for slug in ("optin-newsletter", "activity-newsletter", "optin-ad-sharing", "gpc", "rights"):
        assert f'<svg id="chart-{slug}"' in page
        assert f'aria-labelledby="chart-{slug}-title chart-{slug}-desc"' in page
        assert f"?weeks=26&amp;csv={slug}" in page
    assert "Week starting (Monday)" in page and "Opt-in rate (%)" in page and "Days to completion" in page
    assert 'class="mark"' in page
    assert ">v2 (material)</text>" in page  # the version's date across the time charts
    assert "<td>75.0%</td>" in page
    # A purpose nobody chose about yet (the installed register's) takes a line, not two empty charts.
    assert "No one has made a choice about this purpose yet." in page
    assert '<svg id="chart-optin-personalization"' not in page


def test_a_rate_is_shown_only_when_its_part_whole_and_rest_are_each_zero_or_at_least_k():
    from staff.analytics import Guard

    guard = Guard(3)
    assert guard.rate(5, 10).text == "66.7%"  # 6 of 9: each to the nearest multiple of 3
    assert guard.rate(0, 10).text == "0.0%" and guard.rate(10, 10).text == "100.0%"
    assert guard.rate(2, 10).text == "<3"  # two people granted
    assert guard.rate(8, 10).text == "<3"  # two people did not
    assert guard.rate(2, 2).text == "<3"
    assert guard.rate(0, 0).text == "—"
    # From counts rounded to a multiple of k: one person more or less changes nothing shown,
    # unless the count crosses a half of k (and then by k).
    ten = Guard(10)
    assert ten.rate(46, 100).text == ten.rate(54, 100).text == ten.rate(47, 96).text == "50.0%"
    assert guard.total(0).text == "0" and guard.total(2).text == "<3" and guard.total(7).text == "≈6"
    assert guard.count(0).text == "0" and guard.count(2).text == "<3" and guard.count(3).text == "3"
    assert guard.days(4.25, 3).text == "4.2" and guard.days(4.0, 2).text == "<3" and guard.days(None, 0).text == "—"


def test_counts_under_the_minimum_are_suppressed_in_the_page_and_the_csv(officer, seeded):
    """The default k (10) hides every count of the seeded ledger, and every rate made from one."""
    page = officer.get(URL).content.decode()
    assert '<td class="suppressed">&lt;10</td>' in page
    assert "71.4" not in page and "57.1" not in page and "60.0" not in page
    optin = rows(officer.get(URL, {"csv": "optin-newsletter"}))
    assert optin[label(0)] == {
        "week": label(0),
        "opt-in rate (%)": "",
        "note": "suppressed (fewer than 10): opt-in rate (%)",
    }
    rights = rows(officer.get(URL, {"csv": "rights"}))
    assert rights["Access"]["median days"] == "" and rights["Access"]["received (rounded)"] == ""


def test_nothing_names_a_person(officer, seeded, settings, member_of):
    settings.STAFF_ANALYTICS_MIN_COUNT = 2
    bodies = [officer.get(URL).content.decode()]
    for slug in ("optin-newsletter", "activity-newsletter", "versions-newsletter", "gpc", "rights"):
        bodies.append(officer.get(URL, {"csv": slug}).content.decode())
    for body in bodies:
        for person in seeded["people"]:
            assert str(person) not in body and person.hex not in body
        assert "@example" not in body.replace("privacy-officer@staff.example", "")


@pytest.mark.parametrize("role", ["Support agent", "Schema editor", "Key administrator", "Auditor"])
def test_roles_without_the_permission_get_403(client, member_of, role, seeded):
    client.force_login(member_of(role))
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"csv": "gpc"}).status_code == 403
    assert URL not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.parametrize("role", ["Privacy officer", "Marketer"])
def test_the_roles_with_the_permission_find_it_on_the_index(client, member_of, role):
    client.force_login(member_of(role))
    assert f'href="{URL}"' in client.get(reverse("admin:index")).content.decode()
    assert client.get(URL).status_code == 200


def test_signed_out_is_sent_to_sign_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]


def test_bad_input_is_a_form_error_or_404_never_a_500(officer, seeded):
    response = officer.get(URL, {"weeks": "many"})
    assert response.status_code == 200 and "Enter a whole number." in response.content.decode()
    response = officer.get(URL, {"weeks": "1"})
    assert response.status_code == 200 and "greater than or equal to 4" in response.content.decode()
    assert officer.get(URL, {"csv": "nonsense"}).status_code == 404
    short = rows(officer.get(URL, {"weeks": "4", "csv": "gpc"}))
    assert len(short) == 4


def test_the_queries_do_not_grow_with_the_ledger(officer, seeded):
    """Six aggregate queries after the admin's own (session, user, MFA, permissions), however many
    events, purposes and requests there are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    officer.get(URL)
    with CaptureQueriesContext(connection) as before:
        assert officer.get(URL).status_code == 200
    with at(week(7)):
        more = PurposeFactory.create(slug="more", published=False)
        policy_version_publish(purpose=more.slug, label="v1", text="More.\n", effective_from=week(7))
    for i in range(12):
        grant(uuid.uuid4(), "more", week(7 + i % 3, hours=10 + i))
        grant(uuid.uuid4(), "newsletter", week(8, hours=i))
    with CaptureQueriesContext(connection) as after:
        assert officer.get(URL).status_code == 200
    assert len(after) == len(before) <= 11


def test_bars_are_as_tall_as_their_values_and_suppressed_ones_are_not_drawn():
    import re

    from staff.analytics import Cell, Chart, Table
    from staff.charts import BOTTOM, HEIGHT, TOP, chart_svg, nice_ceiling

    table = Table("t", "T", "week", ["a", "b"])
    table.add("w1", [Cell(5), Cell(None, under=10)])
    table.add("w2", [Cell(20), Cell(10)])
    svg = chart_svg(Chart("t", "T", "D", "x", "y", "bars", table))
    heights = [float(h) for h in re.findall(r'<rect class="mark" [^>]*height="([0-9.]+)"', svg)]
    plot = HEIGHT - TOP - BOTTOM
    assert nice_ceiling(20) == 20 and nice_ceiling(21) == 25 and nice_ceiling(0) == 1
    assert heights == [
        pytest.approx(plot * 5 / 20, abs=0.1),
        pytest.approx(plot, abs=0.1),
        pytest.approx(plot / 2, abs=0.1),
    ]
    assert "&lt;10" not in svg  # the suppressed cell has no bar (its table says "<10")


def test_the_rights_figures_are_over_all_time_whatever_the_period_shown(officer, seeded, settings):
    """Counted since the period's start, two periods a week apart differed by that week's
    requests (received 12 with 19 weeks, 13 with 22: one request pinned to one week), and the
    median and 90th percentile moved one request at a time."""
    settings.STAFF_ANALYTICS_MIN_COUNT = 10
    for n, days in ((-120, 30), (-40, 2), (-20, 5), (-5, 7), (0, 1), (2, 9), (8, 3), (9, 20)):
        received = week(n)
        RightsRequest.objects.create(
            subject_id=uuid.uuid4(),
            kind=Kind.ACCESS,
            channel=Channel.PORTAL,
            received_at=received,
            due_at=received + timedelta(days=30),
            status=Status.COMPLETED,
            completed_at=received + timedelta(days=days),
        )
    everything = rows(officer.get(URL, {"csv": "rights"}))
    access = everything["Access"]  # 13 requests, completed in 1, 1, 2, 2, 3, 3, 4, 5, 7, 9, 10, 20 and 30 days
    assert (access["received (rounded)"], access["completed (rounded)"]) == ("10", "10")
    assert (access["median days"], access["90th percentile days"]) == ("4.0", "20.0")
    # Two erasures: fewer than k, so neither their count nor their times are shown.
    erasure = everything["Erasure"]
    hidden = ("received (rounded)", "completed (rounded)", "median days", "90th percentile days")
    assert [erasure[c] for c in hidden] == ["", "", "", ""]
    assert erasure["note"].startswith("suppressed (fewer than 10)")
    for weeks in range(4, 157):
        assert rows(officer.get(URL, {"weeks": weeks, "csv": "rights"})) == everything, weeks
    page = officer.get(URL, {"weeks": 4}).content.decode()
    assert "All requests received since the service began, whatever period is shown above" in page
    assert "Data-subject requests by kind, all time" in page


@pytest.fixture
def offers(db):
    """Purpose "offers", one version: 12 grants and 10 refusals in week 0, 3 grants in week 1
    (fewer than k = 10: suppressed in the weekly table), 11 grants in week 2; 26 grants in all."""
    with at(week(0, hours=1)):
        PurposeFactory.create(slug="offers", name="Offers", published=False)
        policy_version_publish(purpose="offers", label="v1", text="Offers.\n", effective_from=week(0, hours=1))
    for n, grants in ((0, 12), (1, 3), (2, 11)):
        for i in range(grants):
            grant(uuid.uuid4(), "offers", week(n, hours=2 + i))
    for i in range(10):
        with at(week(0, days=1, hours=i)):
            consent_refuse(subject_id=uuid.uuid4(), purpose="offers", method=Method.WEB_FORM)


def test_a_versions_total_minus_the_weekly_figures_shown_does_not_give_a_hidden_one(officer, offers, settings):
    """The version's total of grants was exact (26): 26 - (12 + 11) gave the 3 grants of week 1
    the weekly table hides. Rounded to the nearest multiple of k it does not; nor do the rates,
    made from rounded counts (exact, 12 of 22 then 15 of 25 would give the 3 again)."""
    settings.STAFF_ANALYTICS_MIN_COUNT = 10
    hidden = 3
    activity = rows(officer.get(URL, {"csv": "activity-offers"}))
    weekly = [activity[label(n)]["grants"] for n in range(10)]
    assert weekly[:3] == ["12", "", "11"] and set(weekly[3:]) == {"0"}
    assert activity[label(1)]["note"] == "suppressed (fewer than 10): grants"
    visible = sum(int(cell) for cell in weekly if cell)

    versions = rows(officer.get(URL, {"csv": "versions-offers"}))
    published = int(versions["v1"]["grants (rounded)"])
    assert published == 30 and published % 10 == 0
    assert published - visible != hidden
    assert versions["v1"]["refusals (rounded)"] == "10"

    page = officer.get(URL).content.decode()
    section = page[page.index('id="purpose-offers"') :]
    section = section[: section.index("</section>")]
    row = re.search(r'<th scope="row">v1</th>((?:<td[^>]*>[^<]*</td>)+)', section)
    assert row is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))
    assert cells[2] == "≈30"  # grants
    assert int(cells[2].lstrip("≈")) - visible != hidden
    assert "<td>26</td>" not in section
    assert "rounded to the\n      nearest multiple of 10" in section

    optin = rows(officer.get(URL, {"csv": "optin-offers"}))
    rate = "opt-in rate (%)"
    assert optin[label(0)][rate] == "50.0"  # 12 of 22, shown as 10 of 20
    assert optin[label(1)][rate] == "66.7"  # 15 of 25, shown as 20 of 30
    assert optin[label(2)][rate] == "75.0"  # 26 of 36, shown as 30 of 40
