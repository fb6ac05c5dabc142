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
import signal
import sys
import threading
import urllib.parse
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import shiplane_moto  # noqa: E402

shiplane_moto.register()

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server  # noqa: E402


class Serialized:
    """Runs one request at a time through moto, and counts AWS calls by operation.

    GET  /moto-api/shiplane/calls        {"ecs.RegisterTaskDefinition": 2, ...}
    POST /moto-api/shiplane/calls/reset  starts counting from zero
    """

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def __call__(self, environ: Any, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/moto-api/shiplane/calls":
            return self._json(start_response, self.calls)
        if path == "/moto-api/shiplane/calls/reset":
            self.calls = {}
            return self._json(start_response, {"status": "ok"})
        with self.lock:
            operation = _operation(environ)
            if operation:
                self.calls[operation] = self.calls.get(operation, 0) + 1
            return list(self.app(environ, start_response))

    @staticmethod
    def _json(start_response: Any, body: Any) -> list[bytes]:
        data = json.dumps(body, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def _operation(environ: Any) -> str | None:
    """`service.Operation` of an AWS request, from the JSON protocol's target header or the
    query protocol's Action; None for the emulator's own control routes."""
    if environ.get("PATH_INFO", "").startswith("/moto-api"):
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    # Credential=AKID/20261122/us-east-1/ecs/aws4_request
    service = auth.split("Credential=", 1)[1].split("/")[3] if "Credential=" in auth else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}.{target.rsplit('.', 1)[-1]}"
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
