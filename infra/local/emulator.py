"""The local AWS: moto in server mode with Shiplane's extension, on 127.0.0.1 only.

    python infra/local/emulator.py [--port 0] [--port-file FILE]

Port 0 picks a free port; the chosen one is printed and written to --port-file once the
server listens. Requests are served one at a time, so a conditional write's check and
write are atomic as they are in DynamoDB. The server exits when its parent process does,
so a killed test run never leaves it behind.
"""

import argparse
import os
import signal
import sys
import threading
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
    """Runs one request at a time through moto."""

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        with self.lock:
            return list(self.app(environ, start_response))


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
