"""devhost over real HTTP: a ``python -m devhost`` subprocess serving tests/support/sample_app.

Routing, methods, the route prefix, 404/413/500, header and query handling and the front-end
headers are checked the way a client sees them.
"""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devhost.azurite import Azurite
from devhost.testing import DevhostProcess, DevhostStartError

SAMPLE_APP = Path(__file__).resolve().parents[1] / "support" / "sample_app"
LIMIT = 104_857_600  # the host's request body limit (100 MiB)


def sample_copy(folder: Path, values: dict[str, str]) -> Path:
    """The sample app in a folder of its own, with a local.settings.json (git ignores those)."""
    root = folder / "app"
    shutil.copytree(SAMPLE_APP, root, ignore=shutil.ignore_patterns("__pycache__", ".azurite"))
    (root / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return root


@pytest.fixture(scope="module")
def devhost(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    folder = tmp_path_factory.mktemp("devhost-http")
    root = sample_copy(folder, {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SAMPLE_SETTING": "from-file"})
    env = {"AzureWebJobsStorage": azurite.connection_string, "SAMPLE_QUEUE": f"http-{uuid.uuid4().hex[:12]}"}
    with DevhostProcess(root, env=env, log_path=folder / "devhost.log") as process:
        yield process


def get(devhost: DevhostProcess, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(str(kwargs.pop("method", "GET")), devhost.base_url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_startup_lists_the_functions_like_func_start(devhost: DevhostProcess) -> None:
    log = devhost.log_text()
    assert "Functions:" in log
    assert f"item: [GET] {devhost.base_url}/api/items/{{id:int}}" in log
    assert f"itemByName: [DELETE,GET] {devhost.base_url}/api/items/{{name}}" in log
    assert "work: queueTrigger" in log


def test_route_values_and_constraints(devhost: DevhostProcess) -> None:
    response = get(devhost, "/api/items/42")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-sample"] == "yes"
    assert response.json()["function"] == "item"
    assert response.json()["route"] == {"id": "42"}
    assert get(devhost, "/API/ITEMS/abc").json()["route"] == {"name": "abc"}
    assert get(devhost, "/api/items/abc").json()["function"] == "itemByName"
    assert get(devhost, "/api/opt").json()["route"] == {}
    assert get(devhost, "/api/opt/x").json()["route"] == {"name": "x"}


def test_methods_choose_the_function_or_404(devhost: DevhostProcess) -> None:
    # DELETE is not allowed on items/{id:int}: the unconstrained route that allows it answers.
    assert get(devhost, "/api/items/42", method="DELETE").json()["function"] == "itemByName"
    created = get(devhost, "/api/items", method="POST", content=b"new thing")
    assert created.status_code == 201
    assert created.text == "new thing"
    assert created.headers["content-type"] == "text/plain; charset=utf-8"
    missing = get(devhost, "/api/items/abc", method="PUT")  # nobody allows PUT there (catch-all: GET/POST)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"


def test_catch_all_gets_only_what_nothing_else_matches(devhost: DevhostProcess) -> None:
    body = get(devhost, "/api/some/deep/path?x=1").json()
    assert body["function"] == "zCatchAll"
    assert body["route"] == {"path": "some/deep/path"}
    assert get(devhost, "/api/echo").json()["function"] == "echo"


def test_route_prefix_is_required(devhost: DevhostProcess) -> None:
    response = get(devhost, "/items/42")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_encoded_slashes_stay_encoded_in_the_value(devhost: DevhostProcess) -> None:
    # As on Azure: Kestrel decodes the path except %2F, and route values are pieces of that path.
    body = get(devhost, "/api/items/a%2Fb").json()
    assert (body["function"], body["route"]) == ("itemByName", {"name": "a%2Fb"})
    assert body["url"].endswith("/api/items/a%2Fb")
    body = get(devhost, "/api/items/..%2F..%2Fboom").json()
    assert (body["function"], body["route"]) == ("itemByName", {"name": "..%2F..%2Fboom"})


@pytest.mark.parametrize(
    ("sent", "value", "url_path"),
    [
        ("a%20b", "a b", "a%20b"),
        ("a%2520b", "a%20b", "a%20b"),  # the host decodes once: %2520 arrives as %20
        ("a%25b", "a%b", "a%25b"),
        ("%41", "A", "A"),
        ("caf%C3%A9", "café", "caf%C3%A9"),
    ],
)
def test_the_worker_sees_the_path_decoded_once_as_on_azure(
    devhost: DevhostProcess, sent: str, value: str, url_path: str
) -> None:
    body = get(devhost, f"/api/items/{sent}?q=%2520").json()
    assert body["route"] == {"name": value}
    assert body["url"] == f"{devhost.base_url}/api/items/{url_path}?q=%2520"  # the query as sent
    assert body["params"] == {"q": "%20"}


def test_query_url_and_duplicate_parameters(devhost: DevhostProcess) -> None:
    body = get(devhost, "/api/echo?a=1&a=2&b=%20x%2Cy&empty=&flag&twice=&twice=").json()
    # Repeated values joined with ","; empty values left out, as the host leaves them out.
    assert body["params"] == {"a": "1,2", "b": " x,y", "twice": ","}
    assert body["url"] == f"{devhost.base_url}/api/echo?a=1&a=2&b=%20x%2Cy&empty=&flag&twice=&twice="
    assert body["setting"] == "from-file"  # local.settings.json, loaded before the app


def test_duplicate_headers_are_joined_and_peer_is_forwarded(devhost: DevhostProcess) -> None:
    headers = [("X-Multi", "a"), ("x-multi", "b"), ("X-Forwarded-For", "203.0.113.9")]
    body = get(devhost, "/api/echo", headers=headers).json()
    assert body["headers"]["x-multi"] == "a,b"  # StringValues.ToString(), as the host sends it
    # A client's own X-Forwarded-For is dropped: the header is the socket's peer alone.
    assert body["headers"]["x-forwarded-for"] == "127.0.0.1"
    forged = [("x-forwarded-for", "203.0.113.9"), ("X-FORWARDED-FOR", "198.51.100.1, 10.0.0.1")]
    assert get(devhost, "/api/echo", headers=forged).json()["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert get(devhost, "/api/echo").json()["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_front_end_headers_from_a_client_are_removed(devhost: DevhostProcess) -> None:
    forged = {
        "X-ARR-ClientCert": "MIIBforged",
        "X-ARR-SSL": "forged",
        "X-Forwarded-Proto": "https",
        "X-Original-URL": "/management/openapi.json",
        "X-MS-CLIENT-PRINCIPAL-NAME": "admin",
    }
    body = get(devhost, "/api/echo", headers=forged).json()
    for name in ("x-arr-clientcert", "x-arr-ssl", "x-original-url", "x-ms-client-principal-name"):
        assert name not in body["headers"]
    assert body["headers"]["x-forwarded-proto"] == "http"
    assert body["url"].startswith("http://")


def test_function_exception_is_a_bare_500_and_logged(devhost: DevhostProcess) -> None:
    response = get(devhost, "/api/boom")
    assert response.status_code == 500
    assert response.content == b""
    assert "SECRET" not in str(response.headers)
    log = devhost.log_text()
    assert "RuntimeError: SECRET-DETAIL-do-not-leak" in log
    assert "Traceback" in log


def raw_exchange(devhost: DevhostProcess, head: bytes, chunks: int = 0, chunk: bytes = b"") -> bytes:
    """Send a request over a plain socket (so the body can be lied about) and read the answer."""
    with socket.create_connection(("127.0.0.1", devhost.port), timeout=20) as sock:
        sock.sendall(head)
        try:
            for _ in range(chunks):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed early: that is the point
        data = b""
        while True:
            try:
                part = sock.recv(65536)
            except OSError:
                break
            if not part:
                break
            data += part
            if b"\r\n\r\n" in data and chunks == 0:
                break
        return data


def test_declared_oversized_body_is_413_without_reading_it(devhost: DevhostProcess) -> None:
    head = b"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n\r\n" % (devhost.port, LIMIT + 1)
    answer = raw_exchange(devhost, head)
    assert answer.startswith(b"HTTP/1.1 413")


def test_streamed_oversized_body_is_413(devhost: DevhostProcess) -> None:
    head = b"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nTransfer-Encoding: chunked\r\n\r\n" % devhost.port
    chunk = b"x" * 1_000_000
    answer = raw_exchange(devhost, head, chunks=LIMIT // len(chunk) + 2, chunk=chunk)
    assert answer.startswith(b"HTTP/1.1 413")
    # The limit itself is allowed.
    response = get(devhost, "/api/echo", method="POST", content=b"y" * 1_000_000)
    assert response.json()["bodyLength"] == 1_000_000


def test_a_chunked_body_reaches_the_function_empty(devhost: DevhostProcess) -> None:
    """The host forwards a body only when the request has a Content-Length (#4926)."""
    head = b"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % devhost.port
    answer = raw_exchange(devhost, head, chunks=3, chunk=b"hello")
    assert answer.startswith(b"HTTP/1.1 200")
    response_head, _, body = answer.partition(b"\r\n\r\n")
    assert json.loads(dechunk(response_head, body))["bodyLength"] == 0
    assert get(devhost, "/api/echo", method="POST", content=b"hello").json()["bodyLength"] == 5


def test_an_http_function_that_returns_nothing_is_a_500(devhost: DevhostProcess) -> None:
    response = get(devhost, "/api/nothing")
    assert response.status_code == 500
    assert response.content == b""
    assert "function nothing returned None" in devhost.log_text()


def test_urls_longer_than_4_kb_are_refused(devhost: DevhostProcess) -> None:
    path = "/api/long/"
    fits = path + "x" * (4096 - len(path) - len("?q=1")) + "?q=1"
    assert len(fits) == 4096
    assert get(devhost, fits).status_code == 200  # the catch-all
    response = get(devhost, fits + "2")
    assert response.status_code == 414
    assert response.json()["error"]["code"] == "UriTooLong"


def dechunk(head: bytes, body: bytes) -> bytes:
    if b"transfer-encoding: chunked" not in head.lower():
        return body
    data = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        data, body = data + rest[:size], rest[size + 2 :]
    return data


def raw_answer(devhost: DevhostProcess, request: bytes) -> tuple[int, dict[str, object]]:
    """Send a request as written (Host and all) and read the whole answer (the server closes)."""
    with socket.create_connection(("127.0.0.1", devhost.port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while part := sock.recv(65536):
            data += part
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    body = dechunk(head, body)
    return status, json.loads(body) if body.startswith(b"{") else {}


def test_the_url_comes_from_the_request_target_and_host_is_validated(devhost: DevhostProcess) -> None:
    """Issue 13 (9): a Host header carrying a path must not route the call or shape the URL, and
    only the host names devhost serves reach the app, as only bound names pass App Service's front end."""
    port = devhost.port
    injected = b"GET /api/nothing-here HTTP/1.1\r\nHost: 127.0.0.1:%d/api/echo#\r\nConnection: close\r\n\r\n" % port
    status, body = raw_answer(devhost, injected)
    assert status == 400 and body["error"]["code"] == "BadRequest"
    for bad in (b"127.0.0.1:%d?x" % port, b"a b", b"127.0.0.1:%d, evil.example" % port, b"user@127.0.0.1"):
        status, _ = raw_answer(devhost, b"GET /api/echo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % bad)
        assert status == 400, bad
    status, body = raw_answer(devhost, b"GET /api/echo HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 400  # HTTP/1.1 requires Host
    status, body = raw_answer(devhost, b"GET /api/echo HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert status == 404 and body["error"]["code"] == "UnknownHost"
    status, body = raw_answer(devhost, b"GET /api/echo HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n")
    assert status == 404  # another port is another site
    for host in (b"127.0.0.1:%d" % port, b"LOCALHOST:%d" % port, b"[::1]:%d" % port):
        status, body = raw_answer(devhost, b"GET /api/echo?x=1 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host)
        assert status == 200 and body["url"] == f"http://{host.decode()}/api/echo?x=1"
    status, body = raw_answer(devhost, b"GET /api/echo HTTP/1.0\r\n\r\n")
    assert status == 200 and body["url"] == f"http://127.0.0.1:{port}/api/echo"


def test_allowed_hosts_can_be_added(azurite: Azurite, tmp_path: Path) -> None:
    root = sample_copy(tmp_path, {})
    env = {"AzureWebJobsStorage": azurite.connection_string}
    with DevhostProcess(root, env=env, args=["--no-queues", "--allowed-host", "junction.test"]) as process:
        status, body = raw_answer(process, b"GET /api/echo HTTP/1.1\r\nHost: junction.test:8080\r\nConnection: close\r\n\r\n")
        assert status == 200 and body["url"] == "http://junction.test:8080/api/echo"


def test_trusted_front_end_keeps_forwarded_headers(azurite: Azurite, tmp_path: Path) -> None:
    root = sample_copy(tmp_path, {})
    env = {"AzureWebJobsStorage": azurite.connection_string}
    with DevhostProcess(root, env=env, args=["--no-queues", "--trust-forwarded-client-cert"]) as process:
        body = get(process, "/api/echo", headers={"X-ARR-ClientCert": "MIIBcert", "X-Forwarded-Proto": "https"}).json()
        assert body["headers"]["x-arr-clientcert"] == "MIIBcert"
        assert body["url"].startswith("https://")
        assert "queueTrigger" in process.log_text() and "not polled" in process.log_text()
    assert process.returncode == 0  # SIGTERM is a graceful, successful stop
    assert "devhost stopping" in process.log_text()


def test_entering_a_started_devhost_does_not_start_another(azurite: Azurite, tmp_path: Path) -> None:
    root = sample_copy(tmp_path, {})
    log = tmp_path / "devhost.log"
    env = {"AzureWebJobsStorage": azurite.connection_string}
    first = DevhostProcess(root, env=env, args=["--no-queues"], log_path=log).start()
    original = first.process
    with first as entered:
        assert entered.process is original
        with pytest.raises(RuntimeError, match="already running"):
            first.start()
    assert first.returncode == 0
    assert log.read_text().count("devhost ready at") == 1
    with DevhostProcess(root, first.port, env=env, args=["--no-queues"], log_path=log) as again:  # same log
        assert get(again, "/api/items/7").status_code == 200  # it waited for its own ready line
    assert log.read_text().count("devhost ready at") == 2


def test_a_broken_app_is_reported_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text("raise RuntimeError('this app is broken')\n")
    with pytest.raises(DevhostStartError, match="this app is broken"):
        DevhostProcess(
            tmp_path, env={"AzureWebJobsStorage": "UseDevelopmentStorage=false"}, args=["--no-azurite"]
        ).start()


PROBE_APP = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.function_name("beta")
@app.route(route="literal/path", methods=["GET"])
def beta(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("beta")


@app.function_name("alpha")
@app.route(route="{*path}", methods=["GET"])
def alpha(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("alpha")


@app.function_name("gamma")
@app.route(route="literal/path", methods=["POST"])
def gamma(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("gamma")
"""


def probe_app(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(source)
    (folder / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}))
    return folder


def test_routes_go_by_function_name_as_on_azure(tmp_path: Path) -> None:
    """A catch-all named ``alpha`` takes the literal path of ``beta``, as the Functions host does; a
    method the catch-all does not allow passes on to the next route (``gamma``)."""
    root = probe_app(tmp_path / "probe", PROBE_APP)
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=false"}
    with DevhostProcess(root, env=env, args=["--no-azurite", "--no-queues", "--no-timers"]) as process:
        assert get(process, "/literal/path").text == "alpha"
        assert get(process, "/literal/path", method="POST").text == "gamma"
        assert get(process, "/anything/else").text == "alpha"
        log = process.log_text()
    assert "route order: function 'beta' (route 'literal/path') is shadowed by 'alpha'" in log
    assert "GET /literal/path to 'alpha'" in log
    assert "'gamma'" not in log.split("Functions:")[0]  # gamma shares no method with alpha
    # The banner lists the routes in the order the host tries them.
    banner = log[log.index("Functions:") :]
    assert banner.index("alpha:") < banner.index("beta:") < banner.index("gamma:")


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([("one", "admin/things", "GET")], "conflicts with one or more built in routes"),
        ([("one", "runtime", "GET")], "conflicts with one or more built in routes"),
        ([("one", "items/{id}", "GET"), ("two", "items/{id}", "GET")], "conflicts with the route defined by function 'one'"),
    ],
)
def test_devhost_refuses_routes_the_host_refuses(tmp_path: Path, routes: list[tuple[str, str, str]], message: str) -> None:
    source = "import azure.functions as func\n\napp = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
    for name, route, method in routes:
        source += (
            f"\n\n@app.function_name({name!r})\n@app.route(route={route!r}, methods=[{method!r}])\n"
            f"def {name}(req: func.HttpRequest) -> func.HttpResponse:\n    return func.HttpResponse('x')\n"
        )
    root = probe_app(tmp_path / "refused", source)
    with pytest.raises(DevhostStartError, match=message):
        DevhostProcess(root, env={"AzureWebJobsStorage": "UseDevelopmentStorage=false"}, args=["--no-azurite"]).start()


def _trickle_until_closed(port: int, first: bytes, then: bytes, pause: float, limit: float) -> tuple[bytes, bool]:
    """Send ``first``, then ``then`` every ``pause`` s for up to ``limit`` s, until the server closes."""
    import time

    with socket.create_connection(("127.0.0.1", port), timeout=limit + 5) as sock:
        sock.settimeout(pause)
        if first:
            sock.sendall(first)
        received = b""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                part = sock.recv(65536)
            except TimeoutError:
                try:
                    if then:
                        sock.sendall(then)
                except OSError:
                    return received, True
                continue
            except OSError:
                return received, True
            if not part:
                return received, True
            received += part
        return received, False


def test_slow_request_headers_are_cut_off(azurite: Azurite, tmp_path: Path) -> None:
    """Issue 13 (also seen): devhost had no time limit for reading request headers, so a client
    trickling header bytes (slowloris), or sending nothing, held a connection for ever. Like
    Kestrel, devhost now answers 408 and closes when the headers take longer than the limit."""
    root = sample_copy(tmp_path, {})
    env = {"AzureWebJobsStorage": azurite.connection_string}
    with DevhostProcess(root, env=env, args=["--no-queues", "--header-timeout", "1"]) as process:
        head = b"GET /api/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % process.port
        received, closed = _trickle_until_closed(process.port, head, b"X-Slow: 1\r\n", 0.3, 15)
        assert closed and received.startswith(b"HTTP/1.1 408"), received
        received, closed = _trickle_until_closed(process.port, b"", b"", 0.3, 15)  # connects, sends nothing
        assert closed and received.startswith(b"HTTP/1.1 408"), received
        # A request whose headers arrive in time, and a slow body, are not affected.
        assert get(process, "/api/echo").status_code == 200
        assert "request headers took more than 1 s" in process.log_text()
