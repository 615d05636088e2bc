"""The 41 CUAD categories, their descriptions, and the natural question each one asks."""

from __future__ import annotations

import csv
import difflib
import io
import re

# CUAD v1's 41 categories, spelled as master_clauses.csv's columns: a release without one of them is not CUAD.
CUAD_CATEGORIES = (
    "Document Name", "Parties", "Agreement Date", "Effective Date", "Expiration Date", "Renewal Term",
    "Notice Period To Terminate Renewal", "Governing Law", "Most Favored Nation", "Competitive Restriction Exception",
    "Non-Compete", "Exclusivity", "No-Solicit Of Customers", "No-Solicit Of Employees", "Non-Disparagement",
    "Termination For Convenience", "Rofr/Rofo/Rofn", "Change Of Control", "Anti-Assignment",
    "Revenue/Profit Sharing", "Price Restrictions", "Minimum Commitment", "Volume Restriction",
    "Ip Ownership Assignment", "Joint Ip Ownership", "License Grant", "Non-Transferable License",
    "Affiliate License-Licensor", "Affiliate License-Licensee", "Unlimited/All-You-Can-Eat-License",
    "Irrevocable Or Perpetual License", "Source Code Escrow", "Post-Termination Services", "Audit Rights",
    "Uncapped Liability", "Cap On Liability", "Liquidated Damages", "Warranty Duration", "Insurance",
    "Covenant Not To Sue", "Third Party Beneficiary",
)  # fmt: skip


def _fold_category(name: str) -> str:
    return " ".join(name.split()).casefold()


def missing_categories(columns: list[str]) -> tuple[list[str], list[str]]:
    """CUAD's categories that no column names (case and spacing aside), and the columns that are none of them."""
    have = {_fold_category(c) for c in columns}
    known = {_fold_category(c) for c in CUAD_CATEGORIES}
    return [c for c in CUAD_CATEGORIES if _fold_category(c) not in have], [
        c for c in columns if _fold_category(c) not in known
    ]


_CATEGORY = re.compile(r"^\s*Category:\s*(.+?)\s*$")
_DESCRIPTION = re.compile(r"^\s*Description:\s*(.+?)\s*$")


def descriptions_from_readme(readme: str) -> dict[str, str]:
    """Parse the 'CATEGORY LIST' of CUAD_v1_README.txt into {category: description}."""
    out: dict[str, str] = {}
    current: str | None = None
    for line in readme.splitlines():
        if m := _CATEGORY.match(line):
            current = m.group(1).strip()
        elif (m := _DESCRIPTION.match(line)) and current:
            out[current] = " ".join(m.group(1).split())
            current = None
    return out


def descriptions_from_csv(data: str) -> dict[str, str]:
    """Parse category_descriptions.csv ('Category: X', 'Description: Y', ...; may carry a BOM)."""
    reader = csv.reader(io.StringIO(data.lstrip("\ufeff")))
    next(reader, None)
    out = {}
    for row in reader:
        if len(row) >= 2:
            cat = row[0].split(":", 1)[-1].strip()
            out[cat] = row[1].split(":", 1)[-1].strip()
    return out


_INTERROGATIVES = {"is", "are", "does", "do", "what", "which", "who", "on", "when", "how", "can"}
_CARVEOUT = "this category includes "


def question_for(category: str, description: str | None) -> str:
    """A natural question from a category description: 'The name of the contract' -> 'What is the name of the contract?'."""
    if not description:
        return f"What does the contract say about {category.lower()}?"
    d = " ".join(description.split()).rstrip(".")
    first = d.split(" ", 1)[0].lower()
    if first in _INTERROGATIVES and "?" in d:
        return d[: d.index("?") + 1]
    if d.lower().startswith(_CARVEOUT):
        return f"What are {d[len(_CARVEOUT) :]}?"
    if first in {"the", "a", "an"}:
        return f"What is {first} {d.split(' ', 1)[1]}?"
    return f"What is the {d[0].lower()}{d[1:]}?"


def match_descriptions(categories: list[str], descriptions: dict[str, str], fold) -> dict[str, str | None]:
    """Pair each category with its description; names differ slightly between CUAD's files
    ('Price Restrictions' vs 'Price Restriction'), so the closest folded name wins."""
    folded = {fold(k): v for k, v in descriptions.items()}
    out: dict[str, str | None] = {}
    for cat in categories:
        key = fold(cat)
        if key not in folded:
            close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.8)
            key = close[0] if close else key
        out[cat] = folded.get(key)
    return out
