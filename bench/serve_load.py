#!/usr/bin/env python3
"""`cloak serve` under load (issue 23's figures; not part of the test run).

    bench/serve_load.py CLOAK [UPLOADS [SIDE [DRIPPERS]]]
    bench/serve_load.py CLOAK cancel [SIDE [SECONDS...]]

1. Queues UPLOADS (default 50) flat SIDE x SIDE RGBA PNGs (default 4096: about 75 KB each) and
   prints the server's resident memory (VmRSS, VmHWM from /proc) after they are queued and after
   "cancel all".
2. Opens DRIPPERS (default 10) connections that send one header byte every 2 s, then times an
   honest request for the job list.
3. With the drippers still connected, sends SIGINT and times the exit.
4. With a fresh server: one SIDE x SIDE picture of noise (real work in every phase) after
   another, each cancelled a given time after it started running; times each cancel until the
   job says "cancelled" (issue 34: within 2 s in every phase).
"""
import json
import http.client
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib


def flat_png(side):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    row = b"\0" + bytes([90, 140, 200, 255]) * side
    pixels = zlib.compress(row * side, 9)
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) +
            chunk(b"IEND", b""))


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024 / 1024  # GiB
    return fields


class Api:
    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.token = urllib.parse.parse_qs(parts.query)["token"][0]

    def request(self, method, path, body=None, headers=None, timeout=600):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        c.request(method, path, body, {"X-Cloak-Token": self.token, **(headers or {})})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def upload(self, name, data):
        boundary = "cloakbenchboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n").encode() + data
        body += f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/api/jobs", body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def noise_png(side):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\0" + os.urandom(side * 3) for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) +
            chunk(b"IEND", b""))


def cancel_latency(cloak, side, after):
    server = subprocess.Popen([cloak, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        api = Api(server.stdout.readline().strip())
        png = noise_png(side)
        for wait in after:
            status, body = api.upload("noise.png", png)
            job = json.loads(body)["id"]
            while json.loads(api.request("GET", f"/api/jobs/{job}")[1])["state"] != "running":
                time.sleep(0.02)
            time.sleep(wait)
            fraction = json.loads(api.request("GET", f"/api/jobs/{job}")[1]).get("fraction")
            started = time.time()
            api.request("DELETE", f"/api/jobs/{job}")
            while (state := json.loads(api.request("GET", f"/api/jobs/{job}")[1])["state"]) in (
                    "running", "queued"):
                time.sleep(0.02)
            print(f"cancelled {wait:5.1f} s into a {side}x{side} job (fraction {fraction}): "
                  f"{state} after {time.time() - started:.2f} s")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def drip(port, stop):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        for byte in b"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n" * 100:
            if stop.is_set():
                break
            s.send(bytes([byte]))
            stop.wait(2)
    except OSError:
        pass  # the server closed it: what a server should do
    finally:
        s.close()


def main():
    cloak = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "cancel":
        side = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
        return cancel_latency(cloak, side, [float(a) for a in sys.argv[4:]] or [1, 3, 6, 12, 30])
    uploads = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    side = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    drippers = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    server = subprocess.Popen([cloak, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        api = Api(server.stdout.readline().strip())
        print(f"server up: {memory(server.pid)['VmRSS']:.2f} GiB resident")
        png = flat_png(side)
        statuses = [api.upload(f"flat-{i}.png", png)[0] for i in range(uploads)]
        time.sleep(2)
        m = memory(server.pid)
        print(f"{uploads} uploads of {side}x{side} RGBA ({len(png) / 1024:.0f} KB each), answers "
              f"{sorted(set(statuses))}: VmRSS {m['VmRSS']:.2f} GiB, peak {m['VmHWM']:.2f} GiB")
        api.request("DELETE", "/api/jobs")
        time.sleep(5)
        m = memory(server.pid)
        print(f"after cancel all: VmRSS {m['VmRSS']:.2f} GiB, peak {m['VmHWM']:.2f} GiB")

        stop = threading.Event()
        threads = [threading.Thread(target=drip, args=(api.port, stop)) for _ in range(drippers)]
        for t in threads:
            t.start()
        time.sleep(3)
        started = time.time()
        try:
            status, _ = api.request("GET", "/api/jobs", timeout=120)
            print(f"honest GET /api/jobs beside {drippers} dripping clients: {status} in "
                  f"{time.time() - started:.2f} s")
        except TimeoutError:
            print(f"honest GET /api/jobs beside {drippers} dripping clients: no answer in 120 s")
        started = time.time()
        for which, wait in (("SIGINT", 30), ("a second SIGINT", 10)):
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=wait)
                print(f"{which} with the drippers connected: exited {server.returncode} "
                      f"{time.time() - started:.2f} s after the first")
                break
            except subprocess.TimeoutExpired:
                print(f"{which}: still running {wait} s later")
        stop.set()
        for t in threads:
            t.join()
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


if __name__ == "__main__":
    main()
