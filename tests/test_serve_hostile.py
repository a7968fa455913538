"""``castlewatch serve`` against hostile requests: malformed bodies, wrong targets, bodies too
large (declared, chunked, or compressed), slow bodies and slow headers. Each gets a clear
error or nothing at all, never a crash or a hang: the server keeps answering everyone else,
and stops promptly."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time

import pytest
from serve_helpers import ServeThread, answer_complete, logs_client, raw_request

TARGET = "X-Amz-Target: Logs_20140328.TestMetricFilter\r\n"


@pytest.fixture(scope="module")
def server():
    with ServeThread(max_body_bytes=64 * 1024, body_timeout_s=0.5) as serving:
        yield serving


def post(port: int, body: bytes, headers: str = TARGET, *, timeout: float = 10) -> tuple[int, dict, bytes]:
    """A POST with ``body`` on its own connection; ``(status, headers, body)`` of the answer."""
    request = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n{headers}"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    return parse(raw_request(port, request, timeout=timeout))


def parse(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def error_of(answer: tuple[int, dict, bytes]) -> tuple[int, str, str]:
    status, _, body = answer
    data = json.loads(body)
    return status, data["__type"], data["message"]


def still_serving(server: ServeThread) -> None:
    logs = logs_client(server.url)
    assert logs.test_metric_filter(filterPattern="ok", logEventMessages=["ok"])["matches"][0]["eventNumber"] == 1


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{bad json", "not valid JSON"),
        (b'["filterPattern", "x"]', "must be a JSON object, not a list"),
        (b'"just a string"', "must be a JSON object, not a string"),
        (b'{"filterPattern": "x", "logEventMessages": ["\xff\xfe"]}', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
    ],
    ids=["truncated", "array", "string", "not-utf8", "nested-5000"],
)
def test_malformed_bodies_are_serialization_errors(server, body, says):
    status, code, message = error_of(post(server.port, body))
    assert (status, code) == (400, "com.amazon.coral.service#SerializationException")
    assert says in message
    still_serving(server)


@pytest.mark.parametrize(
    "headers",
    ["X-Amz-Target: Kinesis_20131202.ListStreams\r\n", "X-Amz-Target: Logs_20140328.NoSuchThing\r\n",
     "X-Amz-Target: Logs_20140328\r\n", ""],
    ids=["other-service", "unknown-operation", "no-operation", "no-target"],
)
def test_wrong_targets_are_unknown_operations(server, headers):
    status, code, message = error_of(post(server.port, b"{}", headers))
    assert (status, code) == (400, "com.amazon.coral.service#UnknownOperationException")
    assert "unknown operation" in message
    still_serving(server)


def test_a_get_is_an_unknown_operation_and_health_answers(server):
    status, _, body = parse(raw_request(server.port, b"GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert status == 400 and b"UnknownOperationException" in body
    status, _, body = parse(raw_request(server.port, b"GET /_castlewatch/health HTTP/1.1\r\nHost: x\r\n"
                                                     b"Connection: close\r\n\r\n"))
    assert (status, json.loads(body)) == (200, {"status": "ok", "upstream": None})


def test_a_declared_huge_body_is_refused_before_it_is_sent(server):
    """413 at once for a Content-Length over the limit; the 100 MB never have to arrive."""
    started = time.monotonic()
    raw = raw_request(server.port, (
        f"POST / HTTP/1.1\r\nHost: x\r\n{TARGET}Content-Type: application/x-amz-json-1.1\r\n"
        f"Content-Length: {100 << 20}\r\n\r\n" + '{"filterPattern": "').encode(), timeout=5)
    status, code, message = error_of(parse(raw))
    assert (status, code) == (413, "RequestEntityTooLargeException")
    assert "65,536 bytes" in message
    assert time.monotonic() - started < 3
    still_serving(server)


def test_a_chunked_body_is_cut_at_the_limit(server):
    """Without a Content-Length, 413 as soon as the body passes the limit."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{TARGET}Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"x" * 16384
        answer = b""
        try:
            for _ in range(64):  # 1 MB, far past the 64 KB limit
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            while not answer_complete(answer) and (data := sock.recv(65536)):
                answer += data
        except (ConnectionResetError, socket.timeout):
            pass
    assert error_of(parse(answer))[:2] == (413, "RequestEntityTooLargeException")
    still_serving(server)


def test_a_compressed_body_is_bounded_once_decompressed(server):
    """A gzip body (64 KB limit) that inflates to 50 MB: 413, without inflating it all."""
    bomb = gzip.compress(b'{"filterPattern": "' + b"a" * (50 << 20) + b'"}')
    assert len(bomb) < 64 * 1024
    status, code, message = error_of(post(server.port, bomb, TARGET + "Content-Encoding: gzip\r\n"))
    assert (status, code) == (413, "RequestEntityTooLargeException")
    assert "decompresses to over" in message
    fine = gzip.compress(json.dumps({"filterPattern": "a", "logEventMessages": ["a"]}).encode())
    status, _, body = post(server.port, fine, TARGET + "Content-Encoding: gzip\r\n")
    assert status == 200 and json.loads(body)["matches"][0]["eventMessage"] == "a"


def test_a_slow_body_times_out_while_others_are_served():
    """A body that stalls gets 408 after the body timeout (1.5 s here); in the meantime the
    server answers another client at once."""
    result: dict = {}
    with ServeThread(body_timeout_s=1.5) as server:

        def slow() -> None:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{TARGET}Content-Length: 100\r\n\r\n{{\"filter".encode())
                started = time.monotonic()
                data = b""
                while not answer_complete(data) and (chunk := sock.recv(65536)):
                    data += chunk
                result["answer"], result["after"] = data, time.monotonic() - started

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.1)
        started = time.monotonic()
        still_serving(server)
        assert time.monotonic() - started < 1.0  # not held up by the stalled client (1.5 s)
        thread.join(10)
    status, code, message = error_of(parse(result["answer"]))
    assert (status, code) == (408, "RequestTimeoutException")
    assert "within 1.5 s" in message
    assert 1.4 < result["after"] < 3


def test_a_body_cut_short_is_a_client_error_not_a_crash(server):
    """The client closes its side before the body it announced is complete."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{TARGET}Content-Length: 100\r\n\r\n{{\"filter".encode())
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)
    time.sleep(0.1)
    assert server.lines[-1].startswith("castlewatch serve: TestMetricFilter -> 400")
    assert not any("castlewatch bug" in line for line in server.lines)
    still_serving(server)


def test_slow_headers_neither_block_others_nor_the_stop():
    """A client that sends half a request line and stalls: others are served, and the
    server stops within its shutdown time anyway."""
    with ServeThread(shutdown_timeout_s=1.0) as serving:
        stalled = socket.create_connection(("127.0.0.1", serving.port), timeout=10)
        stalled.sendall(b"POST / HTT")
        still_serving(serving)
        started = time.monotonic()
    assert time.monotonic() - started < 3
    stalled.close()


def test_the_request_log_holds_no_credentials(server):
    """One line per request: operation, status, time; never the Authorization header, the
    access key, the signature or the body."""
    logs = logs_client(server.url)
    logs.test_metric_filter(filterPattern="secret-pattern", logEventMessages=["secret-message"])
    text = "\n".join(server.lines)
    assert "TestMetricFilter -> 200" in text
    for secret in ("AKIDTESTING", "castlewatch-test-secret", "Signature", "Authorization", "Credential",
                   "secret-pattern", "secret-message"):
        assert secret not in text
