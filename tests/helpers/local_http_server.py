"""A tiny local HTTP file server (127.0.0.1) for the download tests."""
import http.server
import re
import threading


class FileServer:
    """Serves ``files[path] = bytes`` with HTTP Range support.

    ``drop_after[path] = n``: the next response for ``path`` announces the
    full ``Content-Length`` but closes the connection after ``n`` body bytes
    (once). Every request is recorded in ``requests`` as (path, Range header).
    """

    def __init__(self):
        self.files = {}
        self.drop_after = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get('Range')
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                start = 0
                m = re.match(r'bytes=(\d+)-$', rng or '')
                if m:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header('Content-Length', '0')
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header(
                        'Content-Range',
                        f'bytes {start}-{len(data) - 1}/{len(data)}')
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header('Content-Length', str(len(body)))
                self.send_header('Accept-Ranges', 'bytes')
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return f'http://127.0.0.1:{self.port}{path}'

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
