"""Property-based tests (hypothesis) of the parsers of outside data: CUAD CSV rows, CUAD archives, settings.

No network; each property runs a bounded number of examples with no deadline (the CPUs are shared) and
no example database (nothing is written into the checkout).
"""

import csv
import io
import os
import string
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, txt_name_for
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from selfinstruct.core import settings
from selfinstruct.core.paths import project_home
from selfinstruct.core.settings import SettingsError
from selfinstruct.corpus.cuad import CuadCorpus, fold_name, load_cuad
from selfinstruct.corpus.source import CuadArchive, CuadSourceError, open_cuad_source

FAST = hsettings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
BAD_BYTES = "\x00BAD\x00"  # replaced by invalid UTF-8 after encoding


@pytest.fixture(scope="module")
def two(cuad_members):
    """Header, the two shortest contracts' CSV rows and their txt members, and the category count."""
    header = cuad_members["header"]
    rows = sorted(
        cuad_members["rows"], key=lambda r: len(cuad_members["texts"][txt_name_for(r[0], cuad_members["texts"])])
    )[:2]
    texts = {
        txt_name_for(r[0], cuad_members["texts"]): cuad_members["texts"][txt_name_for(r[0], cuad_members["texts"])]
        for r in rows
    }
    n_categories = sum(1 for i, h in enumerate(header) if i > 0 and not h.rstrip().endswith("Answer"))
    return {"header": header, "rows": rows, "texts": texts, "n_categories": n_categories}


def _archive(members: dict[str, bytes]) -> CuadArchive:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return CuadArchive(location="(memory)", _zip=zipfile.ZipFile(io.BytesIO(buf.getvalue())))


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass").replace(BAD_BYTES.encode(), b"\xff\xfe\x80")


cells = st.one_of(
    st.text(max_size=40),
    st.just("[]"),
    st.just("['x', 'y']"),
    st.just("['unterminated"),
    st.just("{[]: 1}"),
    st.just("[" * 300),
    st.just(BAD_BYTES),
    st.just("Yes"),
    st.text(alphabet=string.printable, max_size=40).map(repr),
)


@st.composite
def csv_rows(draw, n_columns: int, filenames: list[str]):
    """A mix of the real rows and rows of random length, random cells and real or random file names."""
    kind = draw(st.sampled_from(["real", "real", "random", "random", "empty"]))
    if kind == "real":
        return ("real", draw(st.integers(0, len(filenames) - 1)))
    if kind == "empty":
        return ("cells", draw(st.sampled_from([[], [""], ["   "]])))
    n = draw(st.one_of(st.integers(0, n_columns + 5), st.just(n_columns), st.just(n_columns)))
    row = draw(st.lists(cells, min_size=n, max_size=n))
    if row and draw(st.booleans()):
        row[0] = draw(st.sampled_from(filenames))
    return ("cells", row)


@FAST
@given(data=st.data())
def test_every_csv_row_is_annotations_or_a_reject_and_valid_rows_are_kept(two, data):
    header, real = two["header"], two["rows"]
    specs = data.draw(st.lists(csv_rows(len(header), [r[0] for r in real]), max_size=8))
    rows = [list(real[s[1]]) if s[0] == "real" else s[1] for s in specs]
    archive = _archive({**two["texts"], f"{ROOT}/master_clauses.csv": _csv_bytes(header, rows)})
    corpus = load_cuad(archive)
    by_row: dict[int, list[dict]] = {}
    for r in corpus.rejects:
        assert r["reason"] and r["source"].endswith("master_clauses.csv")
        by_row.setdefault(r["row"], []).append(r)
    whole = {n for n, rs in by_row.items() if any(not r["reason"].startswith("column ") for r in rs)}
    accepted = [n for n in range(2, len(rows) + 2) if n not in whole]
    for n in accepted:  # an accepted row is complete and names a contract
        row = rows[n - 2]
        assert len(row) == len(header) and fold_name(row[0]) in {fold_name(r[0]) for r in real}
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header) and row and row[0].strip():
            assert any(f"row has {len(row)} of {len(header)} columns" in r["reason"] for r in by_row[n])
    # Labels come only from accepted rows: one per category, less each cell rejected with its reason.
    expected = sum(two["n_categories"] - len(by_row.get(n, [])) for n in accepted)
    assert len(corpus.annotations) == expected
    # A real row is never lost: it is kept, or a row for the same contract was kept before it.
    kept = {fold_name(rows[n - 2][0]): n for n in reversed(accepted)}
    for n, spec in enumerate(specs, start=2):
        if spec[0] == "real":
            key = fold_name(real[spec[1]][0])
            assert key in kept and kept[key] <= n
            if kept[key] < n:
                assert any("second row" in r["reason"] for r in by_row[n])


@FAST
@given(body=st.binary(max_size=2000))
def test_random_bytes_after_a_good_header_never_crash_the_csv_reader(two, body):
    head = _csv_bytes(two["header"], [])
    corpus = load_cuad(_archive({**two["texts"], f"{ROOT}/master_clauses.csv": head + body}))
    assert isinstance(corpus, CuadCorpus)
    assert all(r["reason"] for r in corpus.rejects)


@FAST
@given(data=st.one_of(st.binary(max_size=3000), st.just(b"")))
def test_random_bytes_as_the_archive_fail_only_with_cuad_source_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "CUAD_v1.zip"
        path.write_bytes(data)
        try:
            archive = open_cuad_source(str(path), Path(tmp) / "cache")
            load_cuad(archive)
        except CuadSourceError as exc:
            assert str(path) in str(exc) or "(memory)" in str(exc)


@pytest.fixture(scope="module")
def good_zip(two) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{ROOT}/master_clauses.csv", _csv_bytes(two["header"], [list(r) for r in two["rows"]]))
        for name, data in two["texts"].items():
            zf.writestr(name, data[:4000])
    return buf.getvalue()


@FAST
@given(data=st.data())
def test_a_damaged_good_archive_fails_only_with_cuad_source_error(good_zip, data):
    raw = bytearray(good_zip)
    # Header fields (flags and method, at 6/8/10 in one header or the other; sizes, CRC, name length) as well
    # as random bytes anywhere: an encrypted flag or an unknown method once escaped as RuntimeError.
    headers = [i for sig in (b"PK\x03\x04", b"PK\x01\x02") for i in range(len(raw)) if raw.startswith(sig, i)]
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(
            st.one_of(
                st.integers(0, len(raw) - 1),
                st.builds(
                    lambda h, off: min(h + off, len(raw) - 1),
                    st.sampled_from(headers),
                    st.one_of(st.sampled_from([6, 8, 10]), st.integers(4, 45)),
                ),
            )
        )
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.just(len(raw)), st.integers(0, len(raw))))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "CUAD_v1.zip"
        path.write_bytes(bytes(raw[:cut]))
        try:
            archive = open_cuad_source(str(path), Path(tmp) / "cache")
            try:
                corpus = load_cuad(archive)
            finally:
                archive.close()
            assert all(r["reason"] for r in corpus.rejects)
        except CuadSourceError:
            pass


env_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=string.printable, max_size=30),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e309",
            "-0",
            "0x10",
            "1_000",
            "s3://",
            "s3:",
            "s3://a",
            "s3://bucket/",
            "http://",
            "http://[::1",
            "http://h:0",
            "~nobody/x",
            "file://",
            "redis://",
            "postgresql://u:p@",
            " 20 ",
            "\t",
        ]
    ),
)


@hsettings(max_examples=100, deadline=None, database=None)
@given(name=st.sampled_from(sorted(settings.SETTINGS)), raw=env_text)
def test_any_string_for_any_setting_is_a_value_or_an_error_naming_it(name, raw):
    try:
        value = settings.get(name, {name: raw})
    except SettingsError as exc:
        assert str(exc).startswith(f"{name}=") and f"set it like {name}=" in str(exc)
        return
    if not raw.strip():
        assert value == settings.SETTINGS[name].default
    elif name.endswith(("_ROWS",)):
        assert isinstance(value, int) and value >= 1
    elif name.endswith("_S"):
        assert isinstance(value, float) and 0 <= value < float("inf")


@hsettings(max_examples=50, deadline=None, database=None)
@given(raw=st.text(alphabet=string.ascii_letters + string.digits + "/._-~ ", max_size=30))
def test_any_home_is_a_folder_path_or_an_error_naming_the_variable(raw):
    with tempfile.TemporaryDirectory() as tmp:
        old, cwd = os.environ.get("SELFINSTRUCT_HOME"), os.getcwd()
        os.chdir(tmp)
        try:
            os.environ["SELFINSTRUCT_HOME"] = raw
            try:
                home = project_home()
            except SettingsError as exc:
                assert "SELFINSTRUCT_HOME" in str(exc)
            else:
                assert home.is_absolute() and (not home.exists() or home.is_dir())
        finally:
            os.chdir(cwd)
            if old is None:
                os.environ.pop("SELFINSTRUCT_HOME", None)
            else:
                os.environ["SELFINSTRUCT_HOME"] = old
