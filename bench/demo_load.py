"""Load on the demo page: N concurrent clients against both tabs, through ``gradio_client`` or
Gradio's REST API (``--client http``).

    python bench/demo_load.py --translator CKPT --index DIR [--clients 16] [--seconds 60]
        [--requests 2000] [--client gradio_client|http] [--download]
    python bench/demo_load.py --url http://127.0.0.1:7860/ [...]   # a server already running

Starts ``app.py`` on a free loopback port (or uses ``--url``, which must be a loopback address:
this tool never loads someone else's server), then runs ``--clients`` threads, each with its own
client, until ``--seconds`` have passed or ``--requests`` were sent. Each client sends a
one-sentence translation (``/translate``, greedy; French questions of the validation split when
``../shared/data`` is there, else the page's examples) and a word search (``/search_text``, k=9):
the requests go to the endpoints in turn, so each gets half.
Prints one JSON object last: per endpoint ``requests``, ``requests_per_s``, ``p50_s``, ``p95_s``,
``max_s``, ``errors`` (with the first error's message), and the totals. A request's latency ends
when its answer arrives; the gallery's images are files the answer links to, which a browser
fetches in parallel: ``--download`` makes each client download them too (the client's own work
then counts, on the same cores as the server). Run it on a quiet machine:
the server and the clients share its cores, as they would on a small demo host.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VALID = REPO.parent / "shared" / "data" / "fra-eng" / "questions.valid.tsv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    translator: str | None, index: str | None, startup_s: float = 300.0
) -> tuple[subprocess.Popen[str], str]:
    """``app.py`` on a free loopback port; returns the process and the URL it printed."""
    command = [sys.executable, str(REPO / "app.py"), "--port", str(free_port())]
    command += ["--translator", translator] if translator else []
    command += ["--index", index] if index else []
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    watchdog = threading.Timer(startup_s, proc.kill)
    watchdog.start()
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("url: "):
            watchdog.cancel()
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, line.removeprefix("url: ").strip()
    watchdog.cancel()
    raise SystemExit("error: the demo server did not start:\n" + "".join(lines[-20:]))


def sentences(limit: int = 500) -> list[str]:
    """French questions to translate: the validation split's, else the page's examples."""
    if VALID.is_file():
        rows = [line.split("\t")[0] for line in VALID.read_text(encoding="utf-8").splitlines()]
        return [r for r in rows if r.strip()][:limit]
    from lit_seq2seq.demo import EXAMPLES

    return list(EXAMPLES)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(
    url: str,
    clients: int,
    seconds: float,
    requests: int,
    words: list[str],
    download: bool = False,
    kind: str = "gradio_client",
    seed: int = 0,
) -> dict[str, Any]:
    """Drive the server; a request's latency ends when its answer arrives (with ``download``,
    when the gallery's image files are downloaded too, as a browser would fetch them)."""
    from gradio_client import Client

    french = sentences()
    inputs = {
        "/translate": lambda r: (r.choice(french), 1),
        "/search_text": lambda r: (r.choice(words), 9),
    }
    probe = Client(url, verbose=False)
    names = set(probe.view_api(print_info=False, return_format="dict")["named_endpoints"])
    available = set(inputs) & names
    if not available:
        raise SystemExit(f"error: {url} serves neither /translate nor /search_text")
    latencies: dict[str, list[float]] = {e: [] for e in available}
    errors: dict[str, list[str]] = {e: [] for e in available}
    lock = threading.Lock()
    sent = [0]
    start = time.perf_counter()
    deadline = start + seconds

    def client_loop(i: int) -> None:
        rng = random.Random(seed + i)
        call = make_caller(kind, url, download)
        order = sorted(available)
        while time.perf_counter() < deadline:
            with lock:
                if sent[0] >= requests:
                    return
                endpoint = order[sent[0] % len(order)]  # the endpoints take turns overall
                sent[0] += 1
            args = inputs[endpoint](rng)
            t0 = time.perf_counter()
            try:
                call(endpoint, args)
                with lock:
                    latencies[endpoint].append(time.perf_counter() - t0)
            except Exception as err:  # every failure counts; the first is shown
                with lock:
                    errors[endpoint].append(f"{type(err).__name__}: {str(err)[:200]}")

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    wall = time.perf_counter() - start
    result: dict[str, Any] = {
        "url": url,
        "clients": clients,
        "seconds": round(wall, 1),
        "download_files": download,
        "client": kind,
    }
    for endpoint in sorted(available):
        done = latencies[endpoint]
        result[endpoint.strip("/")] = {
            "requests": len(done) + len(errors[endpoint]),
            "requests_per_s": round(len(done) / wall, 2),
            "p50_s": round(percentile(done, 0.50), 3),
            "p95_s": round(percentile(done, 0.95), 3),
            "max_s": round(max(done), 3) if done else None,
            "errors": len(errors[endpoint]),
            "first_error": errors[endpoint][0] if errors[endpoint] else None,
        }
    result["requests"] = sum(result[e.strip("/")]["requests"] for e in available)
    result["requests_per_s"] = round(sum(len(v) for v in latencies.values()) / wall, 2)
    result["errors"] = sum(len(v) for v in errors.values())
    result["cpus"] = os.cpu_count()
    return result


CLIENTS = ("gradio_client", "http")


def make_caller(kind: str, url: str, download: bool) -> Callable[[str, tuple[Any, ...]], Any]:
    """One simulated user's ``call(endpoint, args)``: ``gradio_client`` (what Python users run;
    it opens a new HTTP connection per request and polls for the answer, which costs about
    60 ms of CPU a request, here on the server's cores), or ``http``: Gradio's REST API
    (``POST /gradio_api/call/<name>``, then the answer's event stream), one kept-alive connection
    per user, as ``curl`` or a browser would talk to the server."""
    if kind == "gradio_client":
        from gradio_client import Client

        client = Client(url, verbose=False, download_files=download)
        return lambda endpoint, args: client.predict(*args, api_name=endpoint)
    import httpx

    session = httpx.Client(base_url=url, timeout=120.0)

    def call(endpoint: str, args: tuple[Any, ...]) -> Any:
        name = endpoint.strip("/")
        posted = session.post(f"gradio_api/call/{name}", json={"data": list(args)})
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        event = ""
        with session.stream("GET", f"gradio_api/call/{name}/{event_id}") as answer:
            for line in answer.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event in ("complete", "error"):
                    data = json.loads(line.removeprefix("data: "))
                    if event == "error":
                        raise RuntimeError(f"{endpoint}: {data}")
                    if download and name == "search_text":
                        for item in data[0]:
                            session.get(item["image"]["url"]).raise_for_status()
                    return data
        raise RuntimeError(f"{endpoint}: the answer stream ended without a result")

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--translator", help="translation checkpoint to serve")
    parser.add_argument("--index", help="DeViSE index folder to serve")
    parser.add_argument("--url", help="a demo server already running on this machine")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0, help="stop sending after this")
    parser.add_argument("--requests", type=int, default=2000, help="stop after this many")
    parser.add_argument(
        "--words",
        default="golf ball,church,truck,music,fish,sport,red circle",
        help="comma-separated word queries; ones the index lacks count as errors",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="each client downloads the gallery's images too (client work counted in latency)",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="gradio_client",
        help="how each user talks to the server (see make_caller)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 3600 or args.requests < 1:
        parser.error("--clients in [1, 256], --seconds in (0, 3600], --requests >= 1")
    proc = None
    if args.url:
        host = urlparse(args.url).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error(f"--url {args.url}: only a loopback server (127.0.0.1, localhost)")
        url = args.url
    else:
        if not (args.translator or args.index):
            parser.error("give --translator and/or --index (or --url)")
        proc, url = start_server(args.translator, args.index)
    try:
        words = [w.strip() for w in args.words.split(",") if w.strip()]
        result = run(
            url, args.clients, args.seconds, args.requests, words, args.download, args.client
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
