"""An Azure Functions custom handler in Python, standard library only.

The Functions host (Azure's, or thaw's) starts this file and sends it invocations on
FUNCTIONS_CUSTOMHANDLER_PORT, in one of two shapes (host.json "enableForwardingHttpRequest"):

- payload protocol (default): POST /<function name> with
  {"Data": {"req": {"Url", "Method", "Query", "Headers", "Params", "Body"}}, "Metadata": {...}};
  the answer is {"Outputs": {"res": {"statusCode", "headers", "body"}}, "Logs": [...], "ReturnValue": ...}
- forwarding: the original HTTP request (GET /api/hello?name=...), answered as plain HTTP.

GET / must answer something: the host polls it to know the handler is ready.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def greet(name):
    return f"Hello, {name or 'world'}!"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def route(self):
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.command == "GET" and path == "/":
            return self.send(200, "text/plain", b"ready")
        if self.command == "POST" and path == "/hello":
            return self.payload(json.loads(body or b"{}"))
        if path == "/api/hello":
            return self.forwarded(body)
        self.send(404, "text/plain", b"not found")

    def payload(self, invocation):
        """The payload protocol: the request is in Data.req, the response goes in Outputs.res."""
        req = invocation.get("Data", {}).get("req", {})
        name = (req.get("Query") or {}).get("name") or req.get("Body") or ""
        answer = {
            "Outputs": {
                "res": {
                    "statusCode": 200,
                    "headers": {"Content-Type": "text/plain; charset=utf-8"},
                    "body": greet(name),
                }
            },
            "Logs": [f"hello was called with {req.get('Method')} {req.get('Url')}"],
            "ReturnValue": None,
        }
        self.send(200, "application/json", json.dumps(answer).encode())

    def forwarded(self, body):
        """Forwarding mode: the original request, answered directly."""
        query = parse_qs(urlsplit(self.path).query)
        name = query.get("name", [""])[0] or body.decode("utf-8", "replace")
        self.send(200, "text/plain; charset=utf-8", greet(name).encode())

    def send(self, status, content_type, data):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass  # the host logs invocations; keep stdout for the app's own messages


def main():
    port = int(os.environ.get("FUNCTIONS_CUSTOMHANDLER_PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"custom handler listening on 127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
