"""The officials' roster: who works at which site's counters, in which role.

A roster is YAML (``staff:`` list) or CSV (columns ``staff_id,full_name,site,role``
and optionally ``username``). It is validated against the site registry before
any host is touched: unknown sites, duplicate staff IDs, unknown roles,
malformed names and clashing user names are reported with file and line, all
in one run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..registry import Registry
from ..validation import (
    Checker,
    Field,
    InputError,
    LineDict,
    Problem,
    load_csv,
    load_yaml,
    strip_diacritics,
    text_problem,
)

# role code -> (Vietnamese label, Unix group, may use sudo)
ROLES: dict[str, tuple[str, str, bool]] = {
    "tiep_nhan": ("Tiếp nhận hồ sơ", "motcua-tiepnhan", False),
    "tra_ket_qua": ("Trả kết quả", "motcua-trakq", False),
    "quan_tri": ("Quản trị", "motcua-quantri", True),
}
# What people write in the role column, folded to a role code.
ROLE_ALIASES = {
    "tiep nhan": "tiep_nhan",
    "tiep nhan ho so": "tiep_nhan",
    "tra ket qua": "tra_ket_qua",
    "quan tri": "quan_tri",
}
STAFF_GROUP = "motcua-staff"  # every roster account; how the role finds accounts to review
ENTRY_SPEC = {
    "staff_id": Field("text", required=True),
    "full_name": Field("text", required=True),
    "site": Field("code", required=True),
    "role": Field("text", required=True),
    "username": Field("ident"),
}
# Accounts an official's may never be: with the accounts role's exclusive groups and the review
# that locks whoever left, a roster naming one of them would change or lock it. Debian 12's
# base accounts (UID < 1000), those of the packages the counter roles install, and the DX
# Centre's support and service accounts; names with '_' or 'systemd-' are system ones too
# (the username pattern already refuses '_').
RESERVED_USERNAMES = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "backup", "list", "irc", "gnats", "nobody", "messagebus", "sshd", "avahi", "colord", "saned",
    "pulse", "rtkit", "geoclue", "usbmux", "tss", "prometheus", "dnsmasq", "polkitd", "cups", "statd",
    "dxsupport", "motcuaexporter", "admin", "administrator", "ansible", "support",
})  # fmt: skip
_STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,31}$")
_USERNAME = re.compile(r"^[a-z][a-z0-9]{1,30}$")


@dataclass(frozen=True)
class Official:
    staff_id: str
    full_name: str
    site: str
    role: str
    username: str
    line: int

    @property
    def group(self) -> str:
        return ROLES[self.role][1]

    @property
    def admin(self) -> bool:
        return ROLES[self.role][2]

    def as_account(self) -> dict[str, object]:
        """What the accounts role needs for one user."""
        return {
            "username": self.username,
            "full_name": self.full_name,
            "staff_id": self.staff_id,
            "role": self.role,
            "role_label": ROLES[self.role][0],
            "group": self.group,
            "admin": self.admin,
        }


def ascii_fold(text: str) -> str:
    """'Nguyễn Văn Đức' -> 'nguyen van duc'."""
    return strip_diacritics(text).lower()


def default_username(full_name: str) -> str:
    """Vietnamese convention: given name, then initials of family and middle names.

    'Nguyễn Văn An' -> 'annv'; 'Trần Thị Minh Thư' -> 'thuttm'.
    """
    parts = ascii_fold(full_name).split()
    return parts[-1] + "".join(p[0] for p in parts[:-1])


def _role_code(value: str) -> str | None:
    if value in ROLES:
        return value
    folded = " ".join(ascii_fold(value).replace("_", " ").split())
    return ROLE_ALIASES.get(folded)


def check_roster(
    path: str | Path, registry: Registry, label: str | None = None
) -> tuple[list[Official], list[Problem]]:
    """Validate a roster file; return the officials (when valid) and every problem.

    ``label`` names the file in messages and decides the format by its suffix
    (``.csv`` or YAML) when ``path`` is a decrypted temporary copy.
    """
    path = Path(path)
    label = label or str(path)
    problems: list[Problem] = []
    rows: list[tuple[int, LineDict | dict]] = []
    if label.lower().endswith(".csv"):
        csv_rows = load_csv(path, label, problems)
        for line, row in csv_rows or []:
            entry = LineDict({k: v for k, v in row.items() if v not in (None, "")})
            entry.line, entry.key_lines = line, {}
            rows.append((line, entry))
    else:
        doc = load_yaml(path, label, problems)
        if doc is not None:
            check = Checker(label, problems, kind="roster")
            top = check.mapping(doc, 1, "", "")
            if top is not None:
                check.fields(top, "", "", {"staff": Field("list", required=True)})
                staff = top.get("staff")
                if isinstance(staff, list):
                    rows = [(staff.line_of(i), item) for i, item in enumerate(staff)]  # type: ignore[attr-defined]
    if not rows and not problems:  # an empty roster would lock every official of every counter
        problems.append(Problem(label, 0, "", "staff", "no official is listed: a roster names every official "
                                "who keeps an account (an empty one would lock them all)"))  # fmt: skip
    check = Checker(label, problems, kind="staff")
    officials: list[Official] = []
    seen_ids: dict[str, int] = {}
    seen_users: dict[tuple[str, str], int] = {}
    for line, raw in rows:
        entry = check.mapping(raw, line, f"line {line}", "")
        if entry is None:
            continue
        who = str(entry.get("staff_id") or f"line {line}")
        before = len(problems)
        values = check.fields(entry, who, "", ENTRY_SPEC)
        if len(problems) != before:
            continue
        staff_id = str(values["staff_id"])
        name = str(values["full_name"])
        site = str(values["site"])
        role = _role_code(str(values["role"]))
        if not _STAFF_ID.fullmatch(staff_id):
            check.report(line, who, "staff_id", "staff IDs are 2-32 letters, digits, '.', '_' or '-'")
        elif staff_id in seen_ids:
            check.report(line, who, "staff_id", f"duplicate staff ID (first at line {seen_ids[staff_id]})")
        else:
            seen_ids[staff_id] = line
        if site not in registry.sites:
            check.report(line, who, "site", f"unknown site {site!r}: not in the site registry")
        if role is None:
            check.report(
                line, who, "role", f"unknown role {values['role']!r} (known: {', '.join(ROLES)}; or Vietnamese labels)"
            )
        name_problem = text_problem(name)
        words = name.split()
        if name_problem:
            check.report(line, who, "full_name", name_problem)
        elif len(words) < 2 or not all(w.replace("-", "").isalpha() for w in words) or name != " ".join(words):
            check.report(line, who, "full_name", f"{name!r} is not a full name (family and given name, letters only)")
        username = str(values.get("username") or default_username(name))
        if not _USERNAME.fullmatch(username):
            check.report(
                line, who, "username", f"{username!r} is not a valid user name (lower-case letters and digits)"
            )
        elif username in RESERVED_USERNAMES or username.startswith("systemd"):
            check.report(line, who, "username", f"{username!r} is a system or service account of the counter PCs: "
                                                "an official's account needs a name of its own")  # fmt: skip
        elif (site, username) in seen_users:
            check.report(
                line,
                who,
                "username",
                f"user name {username!r} is already taken at site {site} (line {seen_users[(site, username)]}); "
                "give this entry an explicit username",
            )
        else:
            seen_users[(site, username)] = line
        if len(problems) == before and role is not None:
            officials.append(Official(staff_id, name, site, role, username, line))
    if problems:
        return [], sorted(problems)
    return officials, []


def load_roster(path: str | Path, registry: Registry, label: str | None = None) -> list[Official]:
    officials, problems = check_roster(path, registry, label)
    if problems:
        raise InputError(problems, what="roster")
    return officials


def accounts_by_site(officials: list[Official]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for official in officials:
        out.setdefault(official.site, []).append(official.as_account())
    return out


def usernames_by_site(officials: list[Official]) -> dict[str, list[str]]:
    """The account names each site's counters must have (what readiness and relocation check)."""
    return {site: [str(a["username"]) for a in accounts] for site, accounts in accounts_by_site(officials).items()}
