#!/usr/bin/env python3
"""Cold start of the five Lambda binaries, measured against a local Lambda runtime API.

For each function and run: start the bootstrap binary with AWS_LAMBDA_RUNTIME_API pointing
at a tiny runtime-API server in this script, and record
  ready  = process start -> its first GET /runtime/invocation/next (init done, ready for
           its first event: the figure the issue's "<= 50 ms" goal is about),
  first  = process start -> its response to that first event (init + first invocation).
AWS calls made at init or in the first invocation go to an AWS emulator (moto, started
here on a free 127.0.0.1 port with the tables created by `argus bootstrap`), so nothing
leaves the machine. Also prints the size of each bootstrap.zip found.

Usage (from the repository root):
  cargo lambda build --profile lambda --x86-64 --output-format zip   # target/lambda/<fn>/bootstrap{,.zip}
  .venv/bin/python3 infra/bench/coldstart.py [--bin-dir target/lambda] [--runs 20]
      [--zip-dir target/lambda] [--zip-dir target/lambda-arm64] [--argus target/debug/argus]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FUNCTIONS = ["probe", "pushgateway", "evaluator", "notifier", "query"]
ROOT = Path(__file__).resolve().parents[2]

NOW = int(time.time())
# The event each function gets first: what the template wires to it.
EVENTS = {
    "probe": {},  # EventBridge Scheduler payload
    "evaluator": {},
    "notifier": {},
    "pushgateway": {  # function URL, payload format 2.0
        "version": "2.0", "routeKey": "$default", "rawPath": "/-/healthy", "rawQueryString": "",
        "headers": {"host": "example.lambda-url.us-east-1.on.aws"},
        "requestContext": {"http": {"method": "GET", "path": "/-/healthy", "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": "bench"}},
        "isBase64Encoded": False,
    },
    "query": {  # function URL: a range query over the last hour (empty store)
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/v1/query_range",
        "rawQueryString": f"query=rate(probe_http_duration_seconds_count%5B5m%5D)&start={NOW - 3600}&end={NOW}&step=15",
        "queryStringParameters": {"query": "rate(probe_http_duration_seconds_count[5m])",
                                  "start": str(NOW - 3600), "end": str(NOW), "step": "15"},
        "headers": {"host": "example.lambda-url.us-east-1.on.aws"},
        "requestContext": {"http": {"method": "GET", "path": "/api/v1/query_range", "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": "bench"}},
        "isBase64Encoded": False,
    },
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """State of one cold start: timestamps and the event to hand out once."""

    def __init__(self, event):
        self.event = event
        self.request_id = str(uuid.uuid4())
        self.t_ready = None
        self.t_first = None
        self.outcome = None
        self.done = threading.Event()
        self.served = False
        self.lock = threading.Lock()


class RuntimeApi(BaseHTTPRequestHandler):
    run = None  # set per run by the bench loop

    def log_message(self, *args):
        pass

    def do_GET(self):
        run = RuntimeApi.run
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        now = time.perf_counter()
        with run.lock:
            first = not run.served
            run.served = True
            if run.t_ready is None:
                run.t_ready = now
        if not first:
            # Second poll: the function is idle; hold it until the process is stopped.
            run.done.wait(30)
            try:
                self.send_error(503)
            except OSError:
                pass  # the process was stopped: expected
            return
        body = json.dumps(run.event).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", run.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def do_POST(self):
        run = RuntimeApi.run
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        now = time.perf_counter()
        if self.path.endswith("/response"):
            run.outcome = ("ok", payload[:200])
        elif self.path.endswith("/error"):
            run.outcome = ("error", payload[:300])
        else:
            run.outcome = ("other", self.path)
        run.t_first = now
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        run.done.set()


def start_moto(argus):
    port = free_port()
    moto = subprocess.Popen([str(ROOT / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    out = subprocess.run([argus, "bootstrap", "--endpoint-url", endpoint], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    topic = out.strip().rsplit(" ", 1)[-1]
    if not topic.startswith("arn:"):
        raise SystemExit(f"argus bootstrap printed no topic ARN:\n{out}")
    return moto, endpoint, topic


def bench_function(binary, name, runs, api_port, endpoint, topic, memory):
    readies, firsts, outcomes = [], [], set()
    for _ in range(runs):
        run = Run(EVENTS[name])
        RuntimeApi.run = run
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api_port}",
            "AWS_LAMBDA_FUNCTION_NAME": f"argus-{name}",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/argus-{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": endpoint,
            "ARGUS_TABLE_PREFIX": "argus-",
            "ARGUS_TOPIC_ARN": topic,
            "ARGUS_CONFIG": str(ROOT / "infra/config/argus.yml"),
            "RUST_LOG": "warn",
        }
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(binary)], env=env, cwd=str(ROOT),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finished = run.done.wait(10)
        proc.kill()
        _, err = proc.communicate()
        if run.t_ready is None:
            raise SystemExit(f"{name}: never polled the runtime API; stderr:\n{err.decode(errors='replace')[-2000:]}")
        readies.append((run.t_ready - t0) * 1000)
        if finished and run.t_first is not None:
            firsts.append((run.t_first - t0) * 1000)
        outcomes.add(run.outcome[0] if run.outcome else "no response")
    return readies, firsts, outcomes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="target/lambda",
                    help="dir with <fn>/bootstrap (cargo lambda build) or <fn> binaries")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--zip-dir", action="append", default=[], help="dirs with <fn>/bootstrap.zip to size")
    ap.add_argument("--argus", default="target/debug/argus", help="the argus CLI (for bootstrap)")
    args = ap.parse_args()
    os.chdir(ROOT)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    moto, endpoint, topic = start_moto(args.argus)
    memory = {"probe": 256, "pushgateway": 128, "evaluator": 256, "notifier": 128, "query": 512}
    try:
        print(f"cold start, {args.runs} runs each, {os.cpu_count()} cores, binaries from {args.bin_dir}")
        print(f"{'function':<12} {'ready p50':>10} {'ready p95':>10} {'ready max':>10} {'first p50':>10}  outcome")
        for name in FUNCTIONS:
            b = Path(args.bin_dir) / name / "bootstrap"
            if not b.exists():
                b = Path(args.bin_dir) / name
            if not b.exists():
                print(f"{name:<12} (no binary at {args.bin_dir}/{name}[/bootstrap])")
                continue
            r, f, o = bench_function(b, name, args.runs, server.server_port, endpoint, topic, memory[name])
            r.sort()
            p95 = r[min(len(r) - 1, int(len(r) * 0.95))]
            first = f"{statistics.median(f):9.1f}ms" if f else "       n/a"
            print(f"{name:<12} {statistics.median(r):8.1f}ms {p95:8.1f}ms {max(r):8.1f}ms {first}  {','.join(sorted(o))}")
        for d in args.zip_dir:
            sizes = []
            for name in FUNCTIONS:
                z = Path(d) / name / "bootstrap.zip"
                sizes.append(f"{name} {z.stat().st_size / 1e6:.2f} MB" if z.exists() else f"{name} (none)")
            print(f"zip sizes in {d}: " + ", ".join(sizes))
    finally:
        moto.kill()
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
