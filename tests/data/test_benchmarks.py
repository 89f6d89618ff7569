"""The benchmark registry: the nine packaged files, their row counts and checksums, downloads, published rows."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from justrl.data import benchmarks as B

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGED = REPO_ROOT / "src" / "justrl" / "data" / "files" / "benchmarks"

PAPER_N = {"AIME24": 32, "AIME25": 32, "AMC23": 32, "MATH-500": 4, "Minerva": 4, "Olympiad-Bench": 4,
           "HMMT25": 32, "BRUMO25": 32, "CMIMC25": 32}


def test_registry_is_the_papers_nine_with_their_samples_per_problem():
    assert B.names() == ["AIME24", "AIME25", "AMC23", "MATH-500", "Minerva", "Olympiad-Bench",
                         "HMMT25", "BRUMO25", "CMIMC25"]
    assert {b.name: b.samples_per_problem for b in B.BENCHMARKS} == PAPER_N
    assert {b.name for b in B.BENCHMARKS if b.schema == "plain"} == {"HMMT25", "BRUMO25", "CMIMC25"}
    assert B.get("MATH-500").task == "math-500"
    assert B.get("AIME24").relpath == "AIME24/test.parquet"


def test_lookup_and_selection():
    assert B.get("math500") is B.get("MATH-500") is B.get("math")
    assert B.get("olympiadbench").name == "Olympiad-Bench"
    assert [b.name for b in B.select("all")] == B.names()
    assert [b.name for b in B.select("math-500, aime24")] == ["AIME24", "MATH-500"]  # table order
    assert [b.name for b in B.select(["HMMT25"])] == ["HMMT25"]
    with pytest.raises(B.BenchmarkDataError, match="unknown benchmark 'AIME23'"):
        B.select("AIME23")


def test_pinned_checksums_are_those_of_the_packaged_files():
    assert B.packaged_dir() == PACKAGED
    sums = {}
    for line in (PACKAGED / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split()
        sums[rel] = digest
    assert {b.relpath: b.sha256 for b in B.BENCHMARKS} == sums
    assert {b.relpath: B.sha256_of(PACKAGED / b.relpath) for b in B.BENCHMARKS} == sums


def test_the_packaged_copy_is_the_default_and_is_checksum_checked(tmp_path, monkeypatch):
    files = B.locate(B.select("AIME24,HMMT25"))
    assert files["AIME24"].path == PACKAGED / "AIME24" / "test.parquet" and files["AIME24"].is_release_file
    damaged = tmp_path / "benchmarks"
    shutil.copytree(PACKAGED, damaged)
    (damaged / "HMMT25" / "test.parquet").write_bytes((PACKAGED / "BRUMO25" / "test.parquet").read_bytes())
    (damaged / "AIME24" / "test.parquet").unlink()
    monkeypatch.setattr(B, "packaged_dir", lambda: damaged)
    with pytest.raises(B.BenchmarkDataError) as info:
        B.locate(B.select("AIME24,AIME25,HMMT25"))
    msg = str(info.value)
    assert "AIME24 (missing)" in msg and "HMMT25 (checksum" in msg and "AIME25" not in msg
    assert "--data-dir download" in msg and "\n" not in msg


def test_all_nine_files_load_with_their_row_counts():
    files = B.locate(B.BENCHMARKS)
    counts = {}
    for bench in B.BENCHMARKS:
        f = files[bench.name]
        assert f.is_release_file, f"{f.path} differs from the release"
        problems = B.load_problems(f)
        counts[bench.name] = len(problems)
        assert [p.meta["example_id"] for p in problems] == list(range(len(problems)))
        assert all(p.prompt == p.prompt.strip() and p.prompt for p in problems)
        assert all(p.ground_truth == p.ground_truth.strip() and p.ground_truth for p in problems)
    assert counts == {"AIME24": 30, "AIME25": 30, "AMC23": 40, "MATH-500": 500, "Minerva": 272,
                      "Olympiad-Bench": 674, "HMMT25": 30, "BRUMO25": 30, "CMIMC25": 40}
    assert counts == {b.name: b.problems for b in B.BENCHMARKS}


def test_both_schemas_read_as_the_release_reads_them():
    files = B.locate([B.get("AIME24"), B.get("HMMT25")], PACKAGED)
    aime = B.load_problems(files["AIME24"])
    assert aime[0].ground_truth == "\\boxed{204}"  # kept as released; the grader unwraps it
    assert aime[0].prompt.startswith("Every morning Aya goes for a $9$-kilometer-long walk")
    hmmt = B.load_problems(files["HMMT25"], limit=2)
    assert len(hmmt) == 2 and hmmt[0].ground_truth == "103" and hmmt[0].id == "HMMT25-0"


def test_missing_local_data_gives_one_message_saying_where_to_put_files(tmp_path):
    with pytest.raises(B.BenchmarkDataError) as info:
        B.locate(B.select("AIME24,HMMT25"), tmp_path)
    msg = str(info.value)
    assert "AIME24" in msg and "HMMT25" in msg
    assert str(tmp_path / "AIME24" / "test.parquet") in msg and "--data-dir" in msg


def test_a_modified_local_file_is_used_but_flagged(tmp_path):
    (tmp_path / "AIME24").mkdir()
    data = (PACKAGED / "AIME24" / "test.parquet").read_bytes()
    (tmp_path / "AIME24" / "test.parquet").write_bytes(data)
    assert B.locate([B.get("AIME24")], tmp_path)["AIME24"].is_release_file
    shutil.copy(PACKAGED / "AMC23" / "test.parquet", tmp_path / "AIME24" / "test.parquet")
    assert not B.locate([B.get("AIME24")], tmp_path)["AIME24"].is_release_file


# --- downloads through pooch, from a local server standing in for GitHub ---------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, handler.requests
    finally:
        server.shutdown()
        server.server_close()


def test_download_once_into_the_cache_with_checksums(file_server, tmp_path):
    url, root, requests = file_server
    for name in ("AIME24", "AMC23"):
        (root / name).mkdir()
        shutil.copy(PACKAGED / name / "test.parquet", root / name / "test.parquet")
    cache = tmp_path / "cache"
    chosen = B.select("AIME24,AMC23")
    files = B.locate(chosen, download=True, cache=cache, base_url=url)
    assert files["AIME24"].path == cache / "AIME24" / "test.parquet"
    assert B.sha256_of(files["AMC23"].path) == B.get("AMC23").sha256
    assert len(B.load_problems(files["AMC23"])) == 40
    assert sorted(requests) == ["/AIME24/test.parquet", "/AMC23/test.parquet"]
    B.locate(chosen, "download", cache=cache, base_url=url)  # cached: nothing fetched again
    assert len(requests) == 2


def test_a_download_with_the_wrong_checksum_is_refused(file_server, tmp_path):
    url, root, _ = file_server
    (root / "AIME24").mkdir()
    shutil.copy(PACKAGED / "AIME25" / "test.parquet", root / "AIME24" / "test.parquet")
    with pytest.raises(B.BenchmarkDataError, match="AIME24 \\(checksum mismatch"):
        B.locate([B.get("AIME24")], download=True, cache=tmp_path / "cache", base_url=url)
    assert not (tmp_path / "cache" / "AIME24" / "test.parquet").exists()


def test_offline_without_data_says_where_to_put_the_files(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on: the download fails at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(B.BenchmarkDataError) as info:
        B.locate(B.select("AIME24,AIME25"), download=True, cache=tmp_path / "cache",
                 base_url=f"http://127.0.0.1:{port}")
    msg = str(info.value)
    assert "AIME24 (download failed" in msg and "AIME25 (download failed" in msg
    assert "--data-dir" in msg and str(tmp_path / "cache") in msg


def test_default_download_url_is_pinned_to_the_release_commit(monkeypatch, tmp_path):
    monkeypatch.delenv(B.DATA_URL_ENV, raising=False)
    monkeypatch.setenv(B.CACHE_ENV, str(tmp_path))
    assert B.DATA_URL == ("https://raw.githubusercontent.com/thunlp/JustRL/"
                          "b2de1c592e72106d7887db87310c7e6810593323/data")
    assert B.cache_dir() == tmp_path / "benchmarks"


# --- published results ------------------------------------------------------------------------


def test_published_rows_ship_with_the_package():
    rows = B.published()
    assert [r.model for r in rows] == [
        "DeepSeek-R1-Distill-Qwen-1.5B", "DeepScaleR-1.5B-Preview", "ProRL-V2", "BroRL",
        "JustRL-DeepSeek-1.5B", "OpenMath-Nemotron-1.5B", "QuestA-Nemotron-1.5B", "JustRL-Nemotron-1.5B"]
    justrl = next(r for r in rows if r.model == "JustRL-DeepSeek-1.5B")
    assert justrl.scores["AIME24"] == 52.60 and justrl.average == 54.87
    assert justrl.average_over(B.names()) == 54.87
    assert justrl.average_over(["AIME24", "AIME25"]) == pytest.approx((52.60 + 38.75) / 2)
    brorl = next(r for r in rows if r.model == "BroRL")
    assert brorl.scores["AMC23"] is None and brorl.average is None
    assert brorl.average_over(["AIME24", "AMC23"]) is None
    assert [r.model for r in B.published("nemotron-1.5b")][-1] == "JustRL-Nemotron-1.5B"
    assert B.families() == ["deepseek-1.5b", "nemotron-1.5b"]


def test_published_csv_is_checksum_checked(monkeypatch):
    assert B.hashlib.sha256((REPO_ROOT / "src/justrl/data/files/published.csv").read_bytes()).hexdigest() == B.PUBLISHED_SHA256
    monkeypatch.setattr(B, "PUBLISHED_SHA256", "0" * 64)
    with pytest.raises(B.BenchmarkDataError, match="published.csv differs"):
        B.published()


def test_a_degenerate_interval_judges_no_published_row():
    assert B.outside_interval(52.6, (40.0, 60.0)) is False
    assert B.outside_interval(29.9, (40.0, 60.0)) is True
    assert B.outside_interval(60.0, (40.0, 60.0)) is False  # the bounds belong to the interval
    for ci in [(0.0, 0.0), (100.0, 100.0), (50.0, 50.0)]:  # one problem, or every problem scored alike
        assert B.outside_interval(52.6, ci) is None
        assert B.outside_interval(ci[0], ci) is None


@pytest.mark.parametrize(("model", "family"), [
    ("hbx/JustRL-DeepSeek-1.5B", "deepseek-1.5b"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-1.5b"),
    ("agentica-org/DeepScaleR-1.5B-Preview", "deepseek-1.5b"),
    ("nvidia/Nemotron-Research-Reasoning-Qwen-1.5B", "deepseek-1.5b"),  # ProRL-V2
    ("hbx/JustRL-Nemotron-1.5B", "nemotron-1.5b"),
    ("nvidia/OpenMath-Nemotron-1.5B", "nemotron-1.5b"),
    ("/tmp/checkpoints/final", None),
])
def test_family_of(model, family):
    assert B.family_of(model) == family
