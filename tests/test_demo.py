"""The demo page (``lit-demo``, app.py): its API through ``gradio_client`` against a real server
started with the command users run, bad input on every field (a message, and the next request
still answered), many clients at once, and a real headless Chromium clicking through both tabs.

One server per module, on a free loopback port, with the session's small checkpoints;
``DEMO_TRANSLATOR``/``DEMO_INDEX`` serve others instead (the README's screenshots: the tuned
translator and the Imagenette index), and ``DEMO_SCREENSHOTS=DIR`` makes the browser test save
a picture of each tab there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.helpers import photo

pytest.importorskip("gradio", reason='the demo extra is not installed: pip install -e ".[demo]"')
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.xdist_group("demo")  # one server for the file, on one worker
GOOD_FR = "où est la gare ?"
STARTUP_S = 180.0


def load_bench() -> Any:
    """``bench/demo_load.py`` as a module (bench/ is not a package): the load bench, and the
    server start-up the fixture shares with it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_load", REPO_ROOT / "bench" / "demo_load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo_load = load_bench()


@pytest.fixture(scope="module")
def index(devise_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lit_devise import index as index_cli

    out = tmp_path_factory.mktemp("demo_index") / "idx"
    images = str(devise_run["shapes"] / "images")
    assert (
        index_cli.main(["--ckpt", str(devise_run["ckpt"]), "--images", images, "--out", str(out)])
        == 0
    )
    return out


@pytest.fixture(scope="module")
def server(tiny_run: dict[str, Any], index: Path) -> Iterator[dict[str, Any]]:
    """``python app.py --translator CKPT --index DIR --port P`` until the module's tests end."""
    translator = os.environ.get("DEMO_TRANSLATOR") or str(tiny_run["ckpt"])
    index_dir = os.environ.get("DEMO_INDEX") or str(index)
    proc, url = demo_load.start_server(translator, index_dir, startup_s=STARTUP_S)
    try:
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        client = Client(url, verbose=False)
        yield {"url": url, "client": client, "translator": translator, "index": index_dir}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def translate(server: dict[str, Any], text: str, beam: int = 1) -> tuple[Any, ...]:
    return server["client"].predict(text, beam, api_name="/translate")


def still_serving(server: dict[str, Any], endpoint: str) -> None:
    """The next request to ``endpoint`` after a bad one is answered."""
    if endpoint == "/translate":
        english, *_ = translate(server, GOOD_FR)
        assert english.strip() != ""
    else:
        assert server["client"].predict("red circle", 3, api_name="/search_text")


# -- translate -------------------------------------------------------------------------------


def test_the_command_prints_its_url_and_translates_as_the_translator_api(
    server: dict[str, Any],
) -> None:
    from lit_seq2seq.module import Seq2SeqModule
    from lit_seq2seq.translator import Translator

    lines = [GOOD_FR, "pourquoi es-tu ici ?", "", "qui a écrit cette lettre ?"]
    english, line, nbest, notes = translate(server, "\n".join(lines))
    expected = Translator(Seq2SeqModule.from_checkpoint(server["translator"]))(lines)
    assert english.split("\n") == [t.text for t in expected]  # one output line per input line
    assert line["value"] == 1 and notes == ""  # the line picker's update: line 1
    assert nbest["data"] == [] if isinstance(nbest, dict) else not nbest  # greedy: no n-best


def test_beam_gives_the_n_best_list_best_first(server: dict[str, Any]) -> None:
    english, _, nbest, _ = translate(server, f"{GOOD_FR}\npourquoi es-tu ici ?", beam=3)
    rows = nbest["data"]
    assert {r[0] for r in rows} == {1, 2}
    for number, first in zip((1, 2), english.split("\n"), strict=True):
        mine = [r for r in rows if r[0] == number]
        assert [r[1] for r in mine] == list(range(1, len(mine) + 1)) and 1 <= len(mine) <= 3
        assert mine[0][2] == first  # the translation is the n-best list's first entry
        scores = [r[3] for r in mine]
        assert scores == sorted(scores, reverse=True)
        assert all(r[4] <= 0 for r in mine)  # summed log-probabilities


def test_heatmap_of_the_picked_line(server: dict[str, Any]) -> None:
    path = server["client"].predict(f"{GOOD_FR}\nqui es-tu ?", 1, 2, api_name="/heatmap")
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # a drawn figure, not a blank
    with pytest.raises(AppError, match=r"line=3 is out of range"):
        server["client"].predict(GOOD_FR, 1, 3, api_name="/heatmap")
    still_serving(server, "/translate")


@pytest.mark.parametrize(
    ("text", "beam", "message"),
    [
        ("", 1, "no text: type one French sentence per line"),
        (" \n\t\n", 1, "no text"),
        ("\n".join([GOOD_FR] * 10_000), 1, "10,000 lines; this page translates at most 100"),
        ("a" * 1_000_000, 1, "line 1: 1,000,000 characters, over the limit of 10,000"),
        ("\x00\x1b\u200b", 1, "no words"),
        (GOOD_FR, 0, r"beam=0 is out of range: expected an integer in \[1, 10\]"),
        (GOOD_FR, 11, r"beam=11 is out of range"),
        (GOOD_FR, 2.5, r"beam=2.5 is out of range"),
    ],
    ids=["empty", "blank", "10k-lines", "1MB-line", "only-control", "beam0", "beam11", "beam2.5"],
)
def test_bad_translate_input_gets_a_message_and_the_server_serves_on(
    server: dict[str, Any], text: str, beam: float, message: str
) -> None:
    with pytest.raises(AppError, match=message):
        translate(server, text, beam)  # type: ignore[arg-type]
    still_serving(server, "/translate")


def test_a_bad_line_among_good_ones_is_named_and_the_rest_translated(
    server: dict[str, Any],
) -> None:
    text = "\n".join([GOOD_FR, "b" * 20_000, "où\x00 est\x1b la\u200b gare ?"])
    english, _, _, notes = translate(server, text)
    out = english.split("\n")
    assert len(out) == 3 and out[0] and out[1] == "" and out[2] == out[0]  # controls dropped
    assert "line 2: 20,000 characters, over the limit of 10,000; not translated" in notes
    assert "line 3: invisible or control characters dropped" in notes


def test_many_clients_at_once_all_answered(server: dict[str, Any]) -> None:
    """Eight users, each with their own client (session), on both tabs at once."""

    def one(i: int) -> str:
        client = Client(server["url"], verbose=False)
        if i % 2:
            return client.predict("red circle", 4, api_name="/search_text")[0]["image"]
        return client.predict(GOOD_FR, 1, api_name="/translate")[0]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert all(answers)


# -- search ----------------------------------------------------------------------------------


def test_search_text_gives_the_cli_results_as_a_gallery(server: dict[str, Any]) -> None:
    from lit_devise.search import Searcher

    gallery = server["client"].predict("red circle", 5, api_name="/search_text")
    expected = Searcher(server["index"]).text("red circle", 5)
    assert [g["caption"] for g in gallery] == [f"{r}. {s:.3f}" for r, s, _ in expected]
    assert all(Path(g["image"]).is_file() for g in gallery)  # served, downloaded by the client


def test_search_by_image_gives_labels_and_images(server: dict[str, Any]) -> None:
    from lit_devise.images import image_files
    from lit_devise.search import Searcher

    query = image_files(Path(Searcher(server["index"]).root))[0]
    labels, gallery = server["client"].predict(handle_file(str(query)), 4, api_name="/search_image")
    assert len(labels["data"]) == 4 and len(gallery) == 4
    assert [row[0] for row in labels["data"]] == [1, 2, 3, 4]
    cosines = [row[2] for row in labels["data"]]
    assert cosines == sorted(cosines, reverse=True) and all(-1 <= c <= 1.0001 for c in cosines)
    assert float(gallery[0]["caption"].split()[1]) > 0.99  # the indexed image finds itself first


def test_control_characters_in_words_separate_them(server: dict[str, Any]) -> None:
    plain = server["client"].predict("red circle", 3, api_name="/search_text")
    typed = server["client"].predict("red\x00circle\u200b", 3, api_name="/search_text")
    assert [g["caption"] for g in typed] == [g["caption"] for g in plain]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    text = folder / "notes.png"
    text.write_text("<html>not an image</html>")
    bomb = folder / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(bomb)  # 144 megapixels in a few kB
    strip = folder / "strip.png"
    Image.new("1", (30_000, 10)).save(strip)
    return {"text": text, "bomb": bomb, "strip": strip, "good": photo(folder / "ok.jpg", size=40)}


@pytest.mark.parametrize(
    ("words", "k", "message"),
    [
        ("", 5, "empty text query"),
        ("zeppelin", 5, r"no word vector for \['zeppelin'\] among the index's query words"),
        ("red " * 65, 5, "a text query of 65 words; give at most 64"),
        ("x" * 1_000_000, 5, r"no word vector for \['x{40}\.\.\.'\] among"),
        ("red circle", 0, r"k=0 is out of range: expected an integer in \[1, 50\]"),
        ("red circle", 51, r"k=51 is out of range"),
    ],
    ids=["empty", "unknown", "65-words", "1MB-word", "k0", "k51"],
)
def test_bad_search_text_gets_a_message_and_the_server_serves_on(
    server: dict[str, Any], words: str, k: int, message: str
) -> None:
    with pytest.raises(AppError, match=message):
        server["client"].predict(words, k, api_name="/search_text")
    still_serving(server, "/search_text")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("text", r"query image notes.png is unreadable or over the pixel budget \(cannot identify"),
        ("bomb", r"bomb.png is unreadable or over the pixel budget \(12000 x 12000 pixels is over"),
        ("strip", r"30000 x 10 is more elongated than 100:1"),
        (None, "no image: upload a photo"),
    ],
)
def test_bad_upload_gets_a_message_and_the_server_serves_on(
    server: dict[str, Any], bad_files: dict[str, Path], name: str | None, message: str
) -> None:
    upload = handle_file(str(bad_files[name])) if name else None
    with pytest.raises(AppError, match=message):
        server["client"].predict(upload, 4, api_name="/search_image")
    still_serving(server, "/search_text")
    labels, _ = server["client"].predict(
        handle_file(str(bad_files["good"])), 2, api_name="/search_image"
    )
    assert len(labels["data"]) == 2


def test_an_image_search_out_of_range_or_too_big_is_refused_and_the_server_serves_on(
    server: dict[str, Any], bad_files: dict[str, Path], tmp_path: Path
) -> None:
    """k of an image search is checked by Gradio's slider (its own one-line message; the upload
    needs Gradio's preprocessing, which checks the slider too); an upload over the server's
    20 MB is refused before it is read."""
    good = handle_file(str(bad_files["good"]))
    with pytest.raises(AppError, match=r"Value 0 is less than minimum value 1"):
        server["client"].predict(good, 0, api_name="/search_image")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as f:
        f.truncate(21 * 1024 * 1024)
    with pytest.raises(Exception, match=r"(?i)size|large|413"):
        server["client"].predict(handle_file(str(huge)), 3, api_name="/search_image")
    labels, _ = server["client"].predict(good, 2, api_name="/search_image")
    assert len(labels["data"]) == 2


def test_load_bench_against_the_server(
    server: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench/demo_load.py`` (the README's load figures) on the test server: every request
    answered and counted, the JSON keys the README quotes."""
    for client, download in (("gradio_client", []), ("http", ["--download"])):
        args = ["--url", server["url"], "--clients", "4", "--requests", "8", "--seconds", "120",
                "--words", "red circle,blue square", "--client", client, *download]  # fmt: skip
        assert demo_load.main(args) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["errors"] == 0 and result["requests"] == 8 and result["clients"] == 4
        assert result["client"] == client and result["download_files"] is bool(download)
        for endpoint in ("translate", "search_text"):
            figures = result[endpoint]
            assert figures["requests"] == 4 and figures["errors"] == 0
            assert 0 < figures["p50_s"] <= figures["p95_s"] <= figures["max_s"]
    args = ["--url", server["url"], "--clients", "2", "--requests", "4", "--words", "qzxvw",
            "--client", "http"]  # fmt: skip
    assert demo_load.main(args) == 1  # an error is counted and shown, not hidden
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["search_text"]["errors"] == 2 and "qzxvw" in result["search_text"]["first_error"]
    with pytest.raises(SystemExit) as refused:  # someone else's server is never loaded
        demo_load.main(["--url", "http://example.com:7860/"])
    assert refused.value.code == 2
    assert "only a loopback server" in capsys.readouterr().err


# -- the page in a real browser --------------------------------------------------------------


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("no chromium + chromedriver: apt-get install chromium chromium-driver")
    return browser, driver


@pytest.fixture(scope="module")
def browser(server: dict[str, Any]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1300", "--lang=en"):  # fmt: skip
        options.add_argument(flag)
    page = webdriver.Chrome(service=Service(driver), options=options)
    page.set_page_load_timeout(60)
    try:
        yield page
    finally:
        page.quit()


def screenshot(browser: Any, path: Path) -> None:
    """The whole page (the window stretched to its height), once the toasts have gone."""
    from selenium.webdriver.common.by import By

    for close in browser.find_elements(By.CSS_SELECTOR, ".toast-close"):
        close.click()
    time.sleep(1.0)
    height = browser.execute_script(
        "const app = document.querySelector('gradio-app');"
        "return Math.max(document.body.scrollHeight, app ? app.scrollHeight : 0)"
    )
    browser.set_window_size(1400, min(int(height) + 80, 4000))
    time.sleep(0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(path))
    browser.set_window_size(1400, 1300)


def toasts(browser: Any) -> list[Any]:
    """Gradio's error messages on the page."""
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, ".toast-body"))


def test_a_person_translates_and_searches_in_the_browser(
    server: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    shots = os.environ.get("DEMO_SCREENSHOTS")
    browser.get(server["url"])
    french = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#fr-text textarea")))
    english = browser.find_element(By.CSS_SELECTOR, "#en-text textarea")

    # Bad input first: a message on the page, then the next request is answered.
    browser.find_element(By.ID, "translate-button").click()
    wait.until(lambda _: any("no text" in t.text for t in toasts(browser)))

    french.send_keys("où est la gare ?\npourquoi le médecin est-il ici ?")
    beam = browser.find_element(By.CSS_SELECTOR, "#beam input[type=number]")
    beam.send_keys(Keys.CONTROL, "a")
    beam.send_keys("3", Keys.TAB)  # beam 3: the n-best list fills
    browser.find_element(By.ID, "translate-button").click()
    wait.until(lambda _: english.get_attribute("value").count("\n") == 1)
    assert all(line.strip() for line in english.get_attribute("value").split("\n"))
    first = english.get_attribute("value").split("\n")[0]
    wait.until(lambda _: first in browser.find_element(By.ID, "nbest").text)
    heatmap = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#heatmap img")))
    wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", heatmap) > 100)
    if shots:
        screenshot(browser, Path(shots) / "demo_translate.png")

    tab = browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Search')]")
    tab.click()
    words = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "#words textarea, #words input"))
    )
    words.send_keys("qzxvw")  # in no vocabulary: the page names it
    browser.find_element(By.ID, "search-button").click()
    wait.until(lambda _: any("qzxvw" in t.text for t in toasts(browser)))
    words.clear()
    words.send_keys(os.environ.get("DEMO_WORDS", "red circle"))
    browser.find_element(By.ID, "search-button").click()
    wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#gallery img")) >= 3)
    if shots:
        screenshot(browser, Path(shots) / "demo_search.png")

    # An uploaded photo: its nearest labels fill the table.
    from lit_devise.images import image_files
    from lit_devise.search import Searcher

    searcher = Searcher(server["index"])
    photo_file = Path(image_files(Path(searcher.root))[0])
    top_label = searcher.image(str(photo_file), 1, "labels")[0][2]
    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(photo_file))
    wait.until(lambda _: photo_file.stem in browser.find_element(By.ID, "upload").text)
    browser.find_element(By.ID, "image-button").click()
    wait.until(lambda _: top_label in browser.find_element(By.ID, "labels").text)


# -- in process: the command's errors, the checkpoint's facts ---------------------------------


def test_the_command_refuses_bad_flags_in_one_line(
    tiny_run: dict[str, Any], tmp_path: Path
) -> None:
    from tests.helpers import run_module

    result = run_module("app")
    assert result.returncode == 2 and "give --translator CKPT, --index DIR or both" in result.stderr
    result = run_module("app", "--translator", str(tiny_run["ckpt"]), "--port", "0")
    assert result.returncode == 2 and "--port: 0 is out of range" in result.stderr
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    result = run_module("app", "--translator", str(junk))
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "is not a readable checkpoint" in result.stderr and "Traceback" not in result.stderr
    result = run_module("app", "--index", str(tmp_path))
    assert result.returncode == 2 and "is not an index folder (no index.json)" in result.stderr


def test_a_busy_port_is_one_line(tiny_run: dict[str, Any]) -> None:
    from tests.helpers import run_module

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_module("app", "--translator", str(tiny_run["ckpt"]), "--port", port)
    assert result.returncode == 2, result.stderr
    assert f"error: cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_facts_come_from_the_checkpoint(tiny_run: dict[str, Any], index: Path) -> None:
    from lit_devise.demo import SearchDemo
    from lit_seq2seq.demo import TranslateDemo

    demo = TranslateDemo(tiny_run["ckpt"])
    info = demo.module.translation or {}
    facts = demo.facts()
    assert f"**vocabulary** {len(info['src_vocab']):,} fr / {len(info['tgt_vocab']):,} en" in facts
    assert f"epoch {demo.module.facts['epoch']}" in facts
    best = demo.module.facts.get("best", {})
    assert best, demo.module.facts  # the tiny run monitors val/bleu
    assert all(f"**best {m}** {v:.2f}" in facts for m, v in best.items())
    search = SearchDemo(index)
    assert f"**index** {search.searcher.info['images']:,} images" in search.facts()
    assert "**held out in training**" in search.facts()


def test_a_replaced_checkpoint_turns_image_search_off_with_the_reason(
    devise_run: dict[str, Any], index: Path, tmp_path: Path
) -> None:
    """Text search needs only the index; image search needs the index's very checkpoint."""
    from lit_common.errors import InputError
    from lit_devise.demo import SearchDemo

    moved = tmp_path / "idx"
    shutil.copytree(index, moved)
    info = json.loads((moved / "index.json").read_text())
    info["ckpt"] = str(tmp_path / "gone.ckpt")
    (moved / "index.json").write_text(json.dumps(info))
    demo = SearchDemo(moved)
    assert demo.image_problem.startswith("image search is off: checkpoint")
    assert demo.words("red circle", 3)  # text search still answers
    with pytest.raises(InputError, match="image search is off"):
        demo.image(str(next(Path(demo.images_root).rglob("*.png"))), 3)


def test_the_command_checks_the_ranges_the_tabs_check() -> None:
    """app.py names the ranges of --max-lines, --max-beam and --max-k without importing the
    models (so --help needs neither extra); they must be the models' own."""
    import app
    from lit_devise.search import K
    from lit_seq2seq.demo import MAX_LINES
    from lit_seq2seq.translate import BEAM

    assert (app.LINES, app.BEAMS, app.KS) == (MAX_LINES, BEAM, K)
