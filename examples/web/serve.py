#!/usr/bin/env python3
"""Serves the browser example (index.html, app.js, the SDK bundle from npm as mirrorfly.js, and
a config.js saying where mixd's REST bootstrap and the XMPP WebSocket are) on
http://localhost:<port>/, a secure context, which the SDK needs for Web Crypto (SCRAM).
Used by scripts/run-dev and tests/test_browser.py. Only these files are served.

Without a reverse proxy, --api and --websocket name the real addresses and the page maps the
SDK's apiBaseUrl (a host name without a port, as the SDK demands) and its wss URL to them."""

import argparse
import http.server
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
FILES = {
    "/": ("index.html", "text/html"),
    "/index.html": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/addresses.js": ("addresses.js", "text/javascript"),
    "/mirrorfly.js": ("node_modules/mirrorfly-sdk/build/index.js", "text/javascript"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--domain", required=True, help="the users' XMPP domain")
    parser.add_argument("--api-base-url", default="https://api.chat.example/api/v1",
                        help="the apiBaseUrl the SDK is given (a host name, no port)")
    parser.add_argument("--api", help="where that base URL really is, e.g. http://127.0.0.1:8080/api/v1")
    parser.add_argument("--websocket", help="where the XMPP WebSocket really is, e.g. ws://127.0.0.1:5280/xmpp-websocket")
    args = parser.parse_args()
    config = {"apiBaseUrl": args.api_base_url, "domain": args.domain,
              "api": args.api, "websocket": args.websocket}
    script = f"window.MIXD_EXAMPLE = {json.dumps(config)};\n".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/config.js":
                body, kind = script, "text/javascript"
            elif path in FILES:
                name, kind = FILES[path]
                body = (HERE / name).read_bytes()
            elif path == "/favicon.ico":
                self.send_response(204)
                self.end_headers()
                return
            else:
                self.send_error(404, "not part of the example")
                return
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"serving http://localhost:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
