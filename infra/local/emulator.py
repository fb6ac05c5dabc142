"""The local AWS: moto in server mode with Shiplane's extension, on 127.0.0.1 only.

    python infra/local/emulator.py [--port 0] [--port-file FILE]

Port 0 picks a free port; the chosen one is printed and written to --port-file once the
server listens. Requests are served one at a time, so a conditional write's check and
write are atomic as they are in DynamoDB. The server exits when its parent process does,
so a killed test run never leaves it behind.
"""

import argparse
import io
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.parse
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# AWS's managed policies (AWSCodeDeployRoleForECS and the rest), served by IAM as AWS
# serves them: a deployment group's service role attaches one, and `shiplane doctor` reads
# it back. moto ships their documents and loads them only when asked (~0.4 s).
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

import shiplane_moto  # noqa: E402

shiplane_moto.register()

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server  # noqa: E402


FAULT_KINDS = ("throttle", "error", "lost")

# SHIPLANE_EMULATOR_TRACE=1: one stderr line per AWS call with the time it took to arrive,
# wait its turn and be served (before any added latency), to see where an event's time goes.
TRACE = os.environ.get("SHIPLANE_EMULATOR_TRACE") == "1"
_turn = threading.local()  # when the request being served got the lock


class Faults:
    """Transient faults injected into a chosen fraction of the calls to each operation,
    from a seeded generator, so a test run is repeatable:

    - throttle: refused with a throttling error before anything happens (400);
    - error:    refused with an internal error before anything happens (500);
    - lost:     done, and then the answer is lost (500): the caller cannot tell it from
                `error`, and a retry meets its own earlier effect (a timeout after the
                server acted).

    Rates are per operation (`dynamodb.TransactWriteItems`) or for every operation (`*`).
    `next` fails the next calls of an operation for certain, before any rate applies:
    {"next": {"codedeploy.PutLifecycleEventHookExecutionStatus": {"throttle": 2}}}.
    """

    def __init__(self) -> None:
        self.rates: dict[str, dict[str, float]] = {}
        self.next: dict[str, dict[str, int]] = {}
        self.rng = random.Random(0)
        self.injected: dict[str, dict[str, int]] = {}

    def set(self, body: dict[str, Any]) -> None:
        rates = body.get("rates", {})
        for op, kinds in rates.items():
            unknown = set(kinds) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"{op}: unknown fault kinds {sorted(unknown)}; use {list(FAULT_KINDS)}")
            if sum(kinds.values()) > 1 or any(v < 0 for v in kinds.values()):
                raise ValueError(f"{op}: rates are fractions that add up to at most 1")
        upcoming = body.get("next", {})
        for op, kinds in upcoming.items():
            unknown = set(kinds) - set(FAULT_KINDS)
            if unknown or any(not isinstance(n, int) or n < 0 for n in kinds.values()):
                raise ValueError(f"{op}: next takes counts of {list(FAULT_KINDS)}")
        self.rates = rates
        self.next = {op: dict(kinds) for op, kinds in upcoming.items()}
        self.rng = random.Random(body.get("seed", 0))
        self.injected = {}

    def draw(self, operation: str) -> str | None:
        for kind, left in self.next.get(operation, {}).items():
            if left > 0:
                self.next[operation][kind] = left - 1
                counts = self.injected.setdefault(operation, {})
                counts[kind] = counts.get(kind, 0) + 1
                return kind
        kinds = self.rates.get(operation) or self.rates.get("*")
        if not kinds:
            return None
        roll, edge = self.rng.random(), 0.0
        for kind in FAULT_KINDS:
            edge += kinds.get(kind, 0.0)
            if roll < edge:
                counts = self.injected.setdefault(operation, {})
                counts[kind] = counts.get(kind, 0) + 1
                return kind
        return None


class Serialized:
    """Runs one request at a time through moto, counts AWS calls by operation, and injects
    faults when asked.

    GET  /moto-api/shiplane/calls        {"ecs.RegisterTaskDefinition": 2, ...}
    GET  /moto-api/shiplane/calls/waves  {"calls": 9, "waves": [["dynamodb.GetItem", ...], ...]}:
                                         the calls in sequential round trips: the critical
                                         path (see round_trips; calls in flight together
                                         share one)
    POST /moto-api/shiplane/calls/reset  starts counting from zero
    POST /moto-api/shiplane/latency      {"ms": 20}: every AWS answer waits this long (outside
                                         the one-at-a-time lock), as a network would: calls
                                         sent together then surely overlap, and a client's
                                         sequential round trips show in its latency
    POST /moto-api/shiplane/faults       {"seed": 7, "rates": {"*": {"throttle": 0.1, "error": 0.05, "lost": 0.05}}}
                                         ({} stops injecting); answers what was injected before
    GET  /moto-api/shiplane/faults       faults injected so far, by operation and kind
    """

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        # (arrived, answered, operation) of every AWS call since the last reset.
        self.windows: list[tuple[float, float, str]] = []
        self.latency = 0.0
        self.faults = Faults()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/moto-api/shiplane/calls":
            return self._json(start_response, self.calls)
        if path == "/moto-api/shiplane/calls/waves":
            waves = round_trips(self.windows)
            return self._json(start_response, {"calls": len(self.windows), "waves": waves})
        if path == "/moto-api/shiplane/calls/reset":
            self.calls = {}
            self.windows = []
            return self._json(start_response, {"status": "ok"})
        if path == "/moto-api/shiplane/latency" and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                self.latency = float(json.loads(environ["wsgi.input"].read(length) or b"{}").get("ms", 0)) / 1000
            except (ValueError, AttributeError, TypeError) as e:
                return self._json(start_response, {"error": str(e)}, "400 Bad Request")
            return self._json(start_response, {"ms": self.latency * 1000})
        arrived = time.monotonic()
        operation = _operation(environ)
        try:
            answer = self._serve(environ, start_response, operation)
            if operation and TRACE:
                done = time.monotonic()
                turn = getattr(_turn, "at", arrived)
                print(
                    f"call {operation} waited {(turn - arrived) * 1000:.2f} ms served {(done - turn) * 1000:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
            if operation and self.latency:
                time.sleep(self.latency)
            return answer
        finally:
            if operation:
                self.windows.append((arrived, time.monotonic(), operation))

    def _serve(self, environ: Any, start_response: Any, operation: str | None) -> Any:
        if environ.get("PATH_INFO", "") == "/moto-api/shiplane/faults":
            with self.lock:
                injected = self.faults.injected
                if environ.get("REQUEST_METHOD") == "POST":
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    try:
                        self.faults.set(json.loads(environ["wsgi.input"].read(length) or b"{}"))
                    except (ValueError, AttributeError) as e:
                        return self._json(start_response, {"error": str(e)}, "400 Bad Request")
                # What was injected until now (a POST starts counting again).
                return self._json(start_response, injected)
        with self.lock:
            _turn.at = time.monotonic()
            fault = None
            if operation:
                self.calls[operation] = self.calls.get(operation, 0) + 1
                fault = self.faults.draw(operation)
            if fault in ("throttle", "error"):
                return _fault_response(environ, start_response, fault)
            if fault == "lost":
                list(self.app(environ, lambda *_args, **_kw: None))
                return _fault_response(environ, start_response, "error")
            scripted = shiplane_moto.scripted_invoke(environ, start_response)
            if scripted is not None:
                return scripted
            if environ.get("PATH_INFO", "").startswith(shiplane_moto.CBOR_PATH):
                account, region = _scope(environ)
                return shiplane_moto.cbor_cloudwatch(environ, start_response, account, region)
            return list(self.app(environ, start_response))

    @staticmethod
    def _json(start_response: Any, body: Any, status: str = "200 OK") -> list[bytes]:
        data = json.dumps(body, sort_keys=True).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def round_trips(windows: list[tuple[float, float, str]]) -> list[list[str]]:
    """Groups calls into sequential round trips, the critical path of the calls: a call's
    round trip is one more than the deepest of the calls answered before it arrived (those
    it may have waited for); calls in flight together share one (what a client sends
    concurrently costs one round trip, however the emulator serves it). A chain of calls
    made one after another beside a long one still counts each link."""
    depth: list[int] = []
    ordered = sorted(windows)
    for arrived, _answered, _operation in ordered:
        before = [d for (a, answered, _), d in zip(ordered, depth) if answered <= arrived]
        depth.append(max(before, default=0) + 1)
    waves: list[list[str]] = [[] for _ in range(max(depth, default=0))]
    for (_arrived, _answered, operation), d in zip(ordered, depth):
        waves[d - 1].append(operation)
    return waves


def _fault_response(environ: Any, start_response: Any, kind: str) -> list[bytes]:
    """A transient error as the service's protocol spells it: JSON for the JSON protocols
    (DynamoDB, ECS, CodeDeploy, EventBridge), JSON with the type in a header for the REST
    JSON ones (Scheduler, Lambda), XML for the query protocol (SNS, SQS)."""
    status, code = ("400 Bad Request", "ThrottlingException") if kind == "throttle" else (
        "500 Internal Server Error", "InternalFailure")
    message = f"injected by the local AWS ({kind})"
    extra: list[tuple[str, str]] = []
    if environ.get("HTTP_X_AMZ_TARGET"):
        data = json.dumps({"__type": code, "message": message}).encode()
        ctype = "application/x-amz-json-1.0"
    elif _service(environ) in REST_JSON:
        data = json.dumps({"message": message}).encode()
        ctype = "application/json"
        extra = [("x-amzn-ErrorType", code)]
    else:
        code = "Throttling" if kind == "throttle" else "InternalFailure"
        data = (f"<ErrorResponse><Error><Type>{'Sender' if kind == 'throttle' else 'Receiver'}</Type>"
                f"<Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>").encode()
        ctype = "text/xml"
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data))),
                            ("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000"), *extra])
    return [data]


# The services Shiplane calls that speak REST JSON: errors are typed by a header.
REST_JSON = {"scheduler", "lambda"}


def _service(environ: Any) -> str:
    """The service a request is signed for (`ecs`, `scheduler`, …)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return auth.split("Credential=", 1)[1].split("/")[3] if "Credential=" in auth else "unknown"


def _scope(environ: Any) -> tuple[str, str]:
    """The account (moto's default for the test keys) and the region a request is signed for."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    region = auth.split("Credential=", 1)[1].split("/")[2] if "Credential=" in auth else "us-east-1"
    return "123456789012", region


def _operation(environ: Any) -> str | None:
    """`service.Operation` of an AWS request, from the JSON protocol's target header or the
    query protocol's Action; None for the emulator's own control routes."""
    if environ.get("PATH_INFO", "").startswith("/moto-api"):
        return None
    # Credential=AKID/20261122/us-east-1/ecs/aws4_request
    service = _service(environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}.{target.rsplit('.', 1)[-1]}"
    if "/operation/" in environ.get("PATH_INFO", ""):  # Smithy RPC v2 CBOR
        return f"{service}.{environ['PATH_INFO'].rsplit('/', 1)[-1]}"
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    query = environ.get("QUERY_STRING", "") + "&" + body.decode("utf-8", "replace")
    action = urllib.parse.parse_qs(query).get("Action", [None])[0]
    return f"{service}.{action}" if action else f"{service}.{environ.get('REQUEST_METHOD', '?')}"


def make(port: int = 0) -> BaseWSGIServer:
    """A listening (not yet serving) emulator on 127.0.0.1."""
    app = Serialized(DomainDispatcherApplication(create_backend_app))
    return make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        threading.Event().wait(1.0)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args()

    server = make(args.port)
    port = server.server_address[1]
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"local AWS listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
