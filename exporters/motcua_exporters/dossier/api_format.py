"""The reporting API's record format, mapped onto :class:`~.records.Dossier`.

This is the interface the project expects of a dossier system (docs/dossiers.md, "The reporting
API"); the lab's stand-in serves it. A real system with another format is another module like
this one (``ITEMS_KEY``, ``NEXT_KEY``, ``map_item``), not a rewrite of the client.
"""

from __future__ import annotations

import datetime as dt
import sys

from .records import CHANNELS, RATINGS, STATUSES, TZ, Dossier, lookup

ITEMS_KEY, NEXT_KEY, TIME_KEY = "ho_so", "trang_tiep", "thoi_diem"
UPDATED_KEY, CODE_KEY = "cap_nhat_luc", "ma_ho_so"
SINCE_PARAM, PAGE_PARAM, SIZE_PARAM = "cap_nhat_tu", "trang", "so_luong"

TEXT = {"code": "ma_ho_so", "site": "ma_don_vi", "procedure_code": "ma_thu_tuc"}
OPTIONAL_TEXT = {"agency": "ma_co_quan", "procedure_name": "ten_thu_tuc", "field": "linh_vuc",
                 "overdue_reason": "ly_do_qua_han", "late_step": "buoc_qua_han"}  # fmt: skip
TIMES = {"received_at": "ngay_tiep_nhan", "due_at": "han_xu_ly", "finished_at": "ngay_co_ket_qua",
         "returned_at": "ngay_tra_ket_qua"}  # fmt: skip
FLAGS = {"paid_online": "thanh_toan_truc_tuyen", "digitised_at_intake": "so_hoa_tiep_nhan",
         "digitised_result": "so_hoa_ket_qua"}  # fmt: skip
CHOICES = {"channel": ("kenh", CHANNELS), "status": ("trang_thai", STATUSES), "rating": ("danh_gia", RATINGS)}


def parse_time(value: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=TZ)


def updated_at(item: dict) -> str:
    return str(item.get(UPDATED_KEY) or "")


def map_item(item: object, where: str, line: int = 0) -> tuple[Dossier | None, list[tuple[str, str]]]:
    """The dossier of one API item, or None and the (API field, message) pairs of what is wrong."""
    if not isinstance(item, dict):
        return None, [("", f"an item is a {type(item).__name__}, not an object")]
    wrong: list[tuple[str, str]] = []
    values: dict[str, object] = {}
    for name, key in TEXT.items():
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            wrong.append((key, "required text"))
        else:
            # Sites, procedures, fields: a few hundred values over a million records, held once each.
            values[name] = value.strip() if name == "code" else sys.intern(value.strip())
    for name, key in OPTIONAL_TEXT.items():
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            wrong.append((key, f"text or null, not {type(value).__name__}"))
        values[name] = sys.intern(value.strip()) if isinstance(value, str) and value.strip() else None
    values["procedure_name"] = values["procedure_name"] or ""
    values["field"] = values["field"] or ""
    for name, key in TIMES.items():
        value = item.get(key)
        if value is None and name != "received_at":
            values[name] = None
            continue
        try:
            values[name] = parse_time(str(value)) if isinstance(value, str) else None
            if values[name] is None:
                raise ValueError
        except ValueError:
            wrong.append((key, f"{value!r} is not an ISO 8601 time"))
    for name, key in FLAGS.items():
        value = item.get(key)
        if value is not None and not isinstance(value, bool):
            wrong.append((key, f"true, false or null, not {value!r}"))
        values[name] = value if isinstance(value, bool) else None
    for name, (key, table) in CHOICES.items():
        value = item.get(key)
        if value is None and name == "rating":
            values[name] = None
            continue
        choice = lookup(table, value) if isinstance(value, str) else None
        if choice is None:
            wrong.append((key, f"{value!r} is not one of {', '.join(table)}"))
        values[name] = choice
    if wrong:
        return None, wrong
    return Dossier(**values, source=where, line=line), []  # type: ignore[arg-type]
