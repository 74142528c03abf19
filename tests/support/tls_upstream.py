"""A small https upstream for the gateway's TLS tests (test_gateway_upstream_tls.sh).

usage: tls_upstream.py NAME CERT KEY PORT [CLIENT_CA]
Serves HTTP/1.1 over TLS on 127.0.0.1:PORT (0: any) and logs
{"msg":"listening","port":N}. Every answer is JSON: the server's NAME, the
path and the subject CN of the client certificate (null without one). With
CLIENT_CA the server requires a client certificate signed by it (mTLS).
GET /counts says how many requests each path got.
"""
import http.server
import json
import ssl
import sys
import threading

name, cert, key, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client_ca = sys.argv[5] if len(sys.argv) > 5 else None
counts = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        with lock:
            counts[path] = counts.get(path, 0) + 1
            snapshot = dict(counts)
        peer = self.connection.getpeercert()
        cn = None
        for rdn in (peer or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        body = {"server": name, "path": self.path, "client_cn": cn}
        if path == "/counts":
            body = {"server": name, "counts": snapshot}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if client_ca:
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a refused handshake is expected in these tests


srv = Server(("127.0.0.1", port), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(json.dumps({"msg": "listening", "port": srv.server_address[1]}), flush=True)
srv.serve_forever()
