"""Dossier records from the reporting API (motcua/dossiers/api.py), read from the lab's dossier
stand-in over HTTPS with the lab CA: paging, the token, the incremental store, faults."""

from __future__ import annotations

import datetime as dt
import json
import stat
import time

import pytest

from motcua.lab.dossier import dossier_records, without_intake_gaps, write_fault
from motcua.lab.procs import wait_for_port
from motcua.times import TZ
from motcua_exporters.dossier.api_format import map_item
from motcua_exporters.dossier.indicators import CITY, summarise
from motcua_exporters.dossier.source import Api, DossierSourceError, RecordStore, fetch

from ..conftest import STANDIN_ADDRESS, STANDIN_HTTPS

pytestmark = pytest.mark.usefixtures("clear_dossier_fault")


@pytest.fixture
def api(dossier_standin):
    token = dossier_standin["token"].read_text().strip()
    return Api(f"{dossier_standin['https']}/api/ho-so", token, ca_file=dossier_standin["ca"], timeout=10, page_size=40)


def test_every_page_is_read_and_every_record_mapped(api):
    fetched = fetch(api)
    assert fetched.pages > 1
    codes = [d.code for d in fetched.dossiers]
    assert len(codes) == len(set(codes)) > api.page_size
    assert {d.site for d in fetched.dossiers} == {"26740", "so-tp"}
    assert {d.channel for d in fetched.dossiers} == {"direct", "online", "postal"}
    assert all(d.received_at.tzinfo is not None for d in fetched.dossiers)
    week = summarise(fetched.dossiers, dt.datetime.now(TZ))[CITY]["7d"]
    assert week.received > 0 and week.finished_on_time > 0 and week.finished_late > 0
    assert week.on_time_rate is not None and 0 < week.on_time_rate < 1


def test_a_wrong_token_is_refused_by_name(api):
    with pytest.raises(DossierSourceError, match=r"HTTP 401: the token was refused"):
        fetch(Api(api.url, "not-the-token", ca_file=api.ca_file, timeout=10))


def test_only_http_urls_and_a_token(api):
    with pytest.raises(DossierSourceError, match="must be http"):
        Api("file:///etc/passwd", "t")
    with pytest.raises(DossierSourceError, match="no token"):
        Api(api.url, "")


@pytest.mark.parametrize(
    ("fault", "message"),
    [("http500", "HTTP 500"), ("wrong-content", "has no 'ho_so' list"), ("down", "not reachable")],
)
def test_a_failing_source_is_an_error_and_the_store_is_left_as_it_was(api, dossier_standin, tmp_path, fault, message):
    store = RecordStore(tmp_path / "records.sqlite")
    store.update(api)
    before = (tmp_path / "records.sqlite").read_bytes()
    write_fault(dossier_standin["faults"], fault)
    if fault == "down":
        time.sleep(0.6)  # the stand-in closes its listeners on its next tick
    with pytest.raises(DossierSourceError, match=message):
        RecordStore(tmp_path / "records.sqlite").update(api)
    assert (tmp_path / "records.sqlite").read_bytes() == before
    write_fault(dossier_standin["faults"], None)
    assert wait_for_port(STANDIN_ADDRESS, STANDIN_HTTPS, 10)


def test_a_page_token_that_comes_back_stops_the_read_as_broken_paging(api, dossier_standin, tmp_path):
    """The stand-in's paging-broken fault answers the first page for every later one, with the same token:
    the read stops at the second page (not after 10,000) and keeps nothing of it."""
    write_fault(dossier_standin["faults"], "paging-broken")
    with pytest.raises(DossierSourceError, match="page 2 gives the next-page token of an earlier page") as info:
        RecordStore(tmp_path / "records.sqlite").update(api)
    assert info.value.reason == "paging"
    assert not (tmp_path / "records.sqlite").exists()


def test_stale_data_is_read_as_it_is_and_the_high_water_mark_never_goes_back(api, dossier_standin, tmp_path):
    path = tmp_path / "records.sqlite"
    RecordStore(path).update(api)
    newest = RecordStore(path).high_water
    read_at = dt.datetime.fromisoformat(RecordStore(path).read_at)  # the API's own clock (thoi_diem)
    assert abs((read_at - dt.datetime.now(TZ)).total_seconds()) < 60
    write_fault(dossier_standin["faults"], "stale", seconds=3 * 3600)
    _read, changed = RecordStore(path).update(api)
    assert changed == 0 and RecordStore(path).high_water == newest  # nothing newer: the store as it was
    # The source answered as of three hours ago: the store is current as of then (the report says STALE).
    assert dt.datetime.fromisoformat(RecordStore(path).read_at) < dt.datetime.now(TZ) - dt.timedelta(hours=2.9)
    fresh = fetch(api)
    assert max(i["cap_nhat_luc"] for i in fresh.items) < (dt.datetime.now(TZ) - dt.timedelta(hours=2.9)).isoformat()


def test_the_store_asks_only_for_what_changed(api, tmp_path):
    path = tmp_path / "records.sqlite"
    read, changed = RecordStore(path).update(api)
    assert read == changed > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = RecordStore(path)
    assert again.since() < again.high_water
    read2, changed2 = again.update(api)
    assert read2 < read  # only the overlap (and what moved on since)
    assert changed2 <= read2
    assert len(again.dossiers()) == len(again) >= read


def test_a_record_that_cannot_be_mapped_names_each_field():
    item = {"ma_ho_so": "H1", "ma_don_vi": "26740", "ma_thu_tuc": "1.0", "kenh": "fax", "trang_thai": "dang_xu_ly",
            "ngay_tiep_nhan": "06/12/2026", "thanh_toan_truc_tuyen": "yes"}  # fmt: skip
    dossier, wrong = map_item(item, "test")
    assert dossier is None
    assert dict(wrong) == {
        "ngay_tiep_nhan": "'06/12/2026' is not an ISO 8601 time",
        "thanh_toan_truc_tuyen": "true, false or null, not 'yes'",
        "kenh": "'fax' is not one of direct, online, postal",
    }
    assert map_item(["not", "an", "object"], "test") == (None, [("", "an item is a list, not an object")])


def test_the_report_from_the_api_refuses_a_site_the_registry_lacks(api, tmp_path, capsys):
    from motcua.cli import main

    token = tmp_path / "token"
    token.write_text(api.token + "\n")
    store = tmp_path / "store" / "records.sqlite"
    argv = ["dossiers", "report", "--api", api.url, "--token-file", str(token), "--ca-file", str(api.ca_file),
            "--store", str(store), "-i", "inventory/lab"]  # fmt: skip
    assert main(argv) == 2
    assert "site 'so-tp' is not in the registry" in capsys.readouterr().err  # the stand-in's agency code
    assert store.exists()  # what was read is kept: the next run asks only for what changed


def test_a_backlog_piles_up_overdue_at_one_site_and_is_withdrawn_when_cleared(api, dossier_standin, tmp_path):
    """`motcua lab fault dossier backlog --site 26740 --value 7`: seven dossiers in progress and overdue
    at that site only, read by the incremental store; clearing the fault withdraws them (they leave the
    overdue count and never count as late)."""
    path = tmp_path / "records.sqlite"
    RecordStore(path).update(api)

    def piled(now: dt.datetime) -> tuple[list, dict, dict]:
        dossiers = RecordStore(path).dossiers()
        pile = [d for d in dossiers if d.code.startswith("T")]
        with_pile = summarise(dossiers, now)["26740"]["today"]
        without = summarise([d for d in dossiers if not d.code.startswith("T")], now)["26740"]["today"]
        return pile, with_pile, without

    write_fault(dossier_standin["faults"], "backlog", seconds=7, site="26740")
    RecordStore(path).update(api)
    pile, with_pile, without = piled(dt.datetime.now(TZ))
    assert len(pile) == 7 and {(d.site, d.status) for d in pile} == {("26740", "in_progress")}
    assert with_pile.open_overdue - without.open_overdue == 7
    assert with_pile.finished_late == without.finished_late  # overdue, not yet late: none has a result
    assert sum(with_pile.late_by_reason.values()) - sum(without.late_by_reason.values()) == 7  # each gives a reason
    write_fault(dossier_standin["faults"], None)
    store = RecordStore(path)
    store.update(api)
    # The store hands over each changed record's previous version (the exporter takes its old counts out).
    withdrawn = {code: old for code, old in store.replaced.items() if code.startswith("T")}
    assert len(withdrawn) == 7 and {old["trang_thai"] for old in withdrawn.values()} == {"dang_xu_ly"}
    assert set(withdrawn) <= set(store.changed)
    pile, with_pile, without = piled(dt.datetime.now(TZ))
    assert len(pile) == 7 and {d.status for d in pile} == {"withdrawn"}
    assert with_pile.open_overdue == without.open_overdue and with_pile.finished_late == without.finished_late
    assert with_pile.late_by_reason == without.late_by_reason


@pytest.mark.parametrize(
    ("site", "count", "message"),
    [(None, 5, "--site CODE"), ("26740", 0, "1 to 500"), ("26740", 501, "1 to 500"), ("26 740", 5, "--site CODE")],
)
def test_a_backlog_needs_a_site_and_a_sensible_count(dossier_standin, site, count, message):
    before = dossier_standin["faults"].read_bytes() if dossier_standin["faults"].exists() else None
    with pytest.raises(ValueError, match=message):
        write_fault(dossier_standin["faults"], "backlog", seconds=count, site=site)
    after = dossier_standin["faults"].read_bytes() if dossier_standin["faults"].exists() else None
    assert after == before


def test_intake_stopped_leaves_a_gap_at_one_site_that_stays_after_it_is_cleared(api, dossier_standin, tmp_path):
    """`motcua lab fault dossier intake-stopped --site 26740`: the dossiers that site would receive from
    then on are never served, while the fault lasts or after it; the other sites receive as before."""
    faults = dossier_standin["faults"]
    write_fault(faults, "intake-stopped", site="26740")
    switches = json.loads(faults.read_text())
    assert switches["fault"] == "intake-stopped" and switches["site"] == "26740"
    since = switches["since"]
    write_fault(faults, None)
    (gap,) = json.loads(faults.read_text())["intake_gaps"]
    assert gap["site"] == "26740" and gap["since"] == since <= gap["until"]
    # Over the stand-in's own flow: a gap of the last three days at 26740 (as if stopped then).
    units = [{"code": code} for code in ("ttpv", "26740", "25747")]
    now = time.time()
    records = dossier_records(units, now)
    stopped = {"intake_gaps": [{"site": "26740", "since": now - 3 * 86400, "until": now - 86400}],
               "fault": "intake-stopped", "site": "25747", "since": now - 2 * 86400}  # fmt: skip
    kept = without_intake_gaps(records, stopped, now)

    def received(r) -> float:
        return dt.datetime.fromisoformat(r["ngay_tiep_nhan"]).timestamp()

    gone = [r for r in records if r not in kept]
    in_gap = [r for r in records if (r["ma_don_vi"] == "26740" and now - 3 * 86400 <= received(r) < now - 86400)
              or (r["ma_don_vi"] == "25747" and received(r) >= now - 2 * 86400)]  # fmt: skip
    assert gone == in_gap and gone  # exactly those, and some (two working days out of three at least)
    assert [r for r in kept if r["ma_don_vi"] == "ttpv"] == [r for r in records if r["ma_don_vi"] == "ttpv"]
    # The API serves the same: none of 26740's received while its fault is on.
    write_fault(faults, "intake-stopped", site="26740")
    served = fetch(api).dossiers
    since = json.loads(faults.read_text())["since"]
    assert served and not [d for d in served if d.site == "26740" and d.received_at.timestamp() >= since]


@pytest.mark.parametrize("site", [None, "26 740"])
def test_intake_stopped_needs_a_site(dossier_standin, site):
    before = dossier_standin["faults"].read_bytes() if dossier_standin["faults"].exists() else None
    with pytest.raises(ValueError, match="intake-stopped: --site CODE"):
        write_fault(dossier_standin["faults"], "intake-stopped", site=site)
    after = dossier_standin["faults"].read_bytes() if dossier_standin["faults"].exists() else None
    assert after == before


def test_pruning_drops_only_closed_dossiers_older_than_every_window(api, tmp_path):
    path = tmp_path / "records.sqlite"
    store = RecordStore(path)
    store.update(api)
    dossiers = store.dossiers()
    assert store.prune(min(d.received_at for d in dossiers)) == 0  # nothing is that old
    later = max(t for d in dossiers for t in (d.received_at, d.finished_at, d.returned_at) if t) + dt.timedelta(days=2)
    handed = []
    gone = store.prune(later, handed.append)
    kept = RecordStore(path).dossiers()
    assert gone == len(handed) == len(dossiers) - len(kept) > 0
    assert {d.code for d in handed} == {d.code for d in dossiers if d.closed}
    assert kept and all(not d.closed for d in kept)  # what is still in progress stays, however old
    assert {d.code for d in kept} == {d.code for d in dossiers if not d.closed}
