#!/usr/bin/env python3
"""A Lambda Runtime API stand-in (the 2018-06-01 API a custom runtime's `bootstrap` polls), for
scripts/invoke and scripts/bench: serve one event to a function's real bootstrap and print the
response it posts. Loopback only.

  runtime_api.py <bootstrap> <event.json> [--init-only]

stdout: the response JSON the bootstrap posted (API Gateway v2 shape: statusCode, headers, body).
stderr: `init_ms=<spawn -> first GET /runtime/invocation/next>` and `invoke_ms=<event -> response>`.
Exit status: 0 on a response, 1 on an invocation or init error, a crash or a 30 s timeout.
--init-only: stop at the first GET next (the Lambda init figure) and print nothing on stdout.
Environment: passed through to the bootstrap (LATCHKEY_*, AWS_*), with the variables the Lambda
runtime sets added when absent.
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid

bootstrap, event_path = sys.argv[1], sys.argv[2]
init_only = "--init-only" in sys.argv[3:]
event = open(event_path, "rb").read()
request_id = str(uuid.uuid4())
done = threading.Event()
result = {}
spawned = 0.0


class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self.reply(404)
        if "init_ms" not in result:
            result["init_ms"] = (time.monotonic() - spawned) * 1000
            result["sent"] = time.monotonic()
            if init_only:
                done.set()
                return  # leave the bootstrap waiting; it is killed
            deadline = int(time.time() * 1000) + 30_000
            return self.reply(200, event, [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:local"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
            ])
        done.wait(5)  # the next invocation never comes: the bootstrap is stopped

    def do_POST(self):
        body = self.body()
        if self.path == f"/2018-06-01/runtime/invocation/{request_id}/response":
            result["response"] = body
        elif self.path.endswith("/error"):
            result["error"] = body
        else:
            return self.reply(404)
        result.setdefault("invoke_ms", (time.monotonic() - result.get("sent", time.monotonic())) * 1000)
        self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
        done.set()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(os.environ)
name = os.path.basename(os.path.dirname(bootstrap)) if os.path.basename(bootstrap) == "bootstrap" else os.path.basename(bootstrap)
for k, v in {
    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
    "AWS_LAMBDA_FUNCTION_NAME": name,
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
    "AWS_LAMBDA_LOG_STREAM_NAME": "local",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_EC2_METADATA_DISABLED": "true",
    "LATCHKEY_TABLE": "latchkey",
}.items():
    env.setdefault(k, v)
env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_address[1]}"
log = open(os.environ.get("INVOKE_LOG", os.devnull), "ab")
spawned = time.monotonic()
proc = subprocess.Popen([bootstrap], env=env, stdout=log, stderr=log)
while not done.wait(0.05):
    if proc.poll() is not None:
        break
    if time.monotonic() - spawned > 30:
        break
exited = proc.poll()
if exited is None:
    proc.kill()
proc.wait()
if "init_ms" in result:
    print(f"init_ms={result['init_ms']:.2f}", file=sys.stderr)
if "invoke_ms" in result:
    print(f"invoke_ms={result['invoke_ms']:.2f}", file=sys.stderr)
if init_only and "init_ms" in result:
    sys.exit(0)
if "response" in result:
    sys.stdout.write(result["response"].decode() + "\n")
    sys.exit(0)
if "error" in result:
    print(f"invocation error: {result['error'].decode()}", file=sys.stderr)
elif exited is not None:
    print(f"bootstrap exited with status {exited} before responding", file=sys.stderr)
else:
    print("timed out after 30 s", file=sys.stderr)
sys.exit(1)
