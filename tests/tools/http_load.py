#!/usr/bin/env python3
"""Hostile clients for `vcpumap serve`, on loopback only. Prints one JSON document.

  http_load.py hold URL [--half N] [--silent M] [--stall-tls K] [--scrapes S] [--cafile F]
                        [--user U:P] [--sources C] [--pid PID]
      Opens N clients that send half a request and hang, M that connect and say nothing and, on
      an https URL, K that send half a TLS ClientHello and stall. While all are held open, makes
      S real scrapes (GET /metrics) one after another; S more before the load give the unloaded
      latency. The hostile clients come from C loopback addresses 127.0.1.x (as a distributed
      attack would), the scrapes from 127.0.0.1. With --term PID, then sends PID SIGTERM and
      waits for the server to close every held connection.

  http_load.py flood URL [--count N] [--concurrency C] [--pid PID] [--timeout T]
      N malformed requests (random bytes, a 70 KB request line, 5,000 headers, a POST announcing
      100 MB, path traversal), C at a time, then one scrape. Reports each kind's answers; "hung"
      is no answer and no close within T seconds.

  http_load.py idle URL
      Sends half a request and waits (at most 60 s) for the server to close the connection.

  http_load.py cap URL --open N [--source ADDR]
      Opens N silent connections from one address and counts those the server closed within 1 s.

Every wait is bounded; the process raises its own open-file limit.
"""
import argparse
import asyncio
import base64
import json
import os
import random
import resource
import signal
import ssl
import sys
import time
import urllib.parse


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def peak_rss_kib(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class Target:
    def __init__(self, url, cafile=None, user=None, timeout=30):
        parts = urllib.parse.urlparse(url)
        self.host, self.port, self.tls = parts.hostname, parts.port, parts.scheme == "https"
        self.context = None
        if self.tls:
            self.context = ssl.create_default_context(cafile=cafile)
        self.auth = ("Basic " + base64.b64encode(user.encode()).decode()) if user else None
        self.timeout = timeout  # for a scrape, and for a flood request's answer

    async def connect(self, source=None, tls=True, timeout=10):
        return await asyncio.wait_for(
            asyncio.open_connection(
                self.host, self.port, local_addr=(source, 0) if source else None,
                ssl=self.context if (self.tls and tls) else None,
                server_hostname=self.host if (self.tls and tls) else None),
            timeout)

    async def scrape(self):
        """One real scrape, as Prometheus makes it: (status, seconds, body holds the metrics)."""
        timeout = self.timeout
        t0 = time.perf_counter()
        try:
            reader, writer = await self.connect(source="127.0.0.1", timeout=timeout)
            request = (f"GET /metrics HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                       "Accept: text/plain\r\nConnection: close\r\n")
            if self.auth:
                request += f"Authorization: {self.auth}\r\n"
            writer.write((request + "\r\n").encode())
            answer = await asyncio.wait_for(reader.read(-1), timeout)
            writer.close()
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as error:
            return {"status": None, "seconds": time.perf_counter() - t0, "error": repr(error)}
        status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else None
        return {"status": int(status) if status and status.isdigit() else None,
                "seconds": time.perf_counter() - t0,
                "ok": b"vcpumap_scrape_success 1" in answer}


def client_hello_half(target):
    """The first half of a real TLS ClientHello for the target."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=target.host)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    return hello[: len(hello) // 2]


async def hold(args):
    target = Target(args.url, args.cafile, args.user, args.timeout)
    unloaded = [await target.scrape() for _ in range(args.scrapes)]
    sources = [f"127.0.1.{i + 1}" for i in range(args.sources)]
    held, failed = [], []
    gate = asyncio.Semaphore(64)  # connects in flight at once: the listen backlog is finite
    half_tls = client_hello_half(target) if target.tls else b""

    async def open_one(i, kind):
        async with gate:
            try:
                reader, writer = await target.connect(sources[i % len(sources)],
                                                      tls=(kind == "half"))
                if kind == "half":
                    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")
                    await writer.drain()
                elif kind == "stall-tls":
                    writer.write(half_tls)
                    await writer.drain()
                held.append((kind, reader, writer))
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as error:
                failed.append(f"{kind}: {error!r}")

    t0 = time.perf_counter()
    jobs = [open_one(i, "half") for i in range(args.half)]
    jobs += [open_one(args.half + i, "silent") for i in range(args.silent)]
    jobs += [open_one(args.half + args.silent + i, "stall-tls") for i in range(args.stall_tls)]
    await asyncio.gather(*jobs)
    opened = time.perf_counter() - t0
    loaded = [await target.scrape() for _ in range(args.scrapes)]
    await asyncio.sleep(0)  # let the loop see any connection the server closed meanwhile
    still_open = sum(1 for _, reader, writer in held
                     if not reader.at_eof() and not writer.is_closing())
    peak = peak_rss_kib(args.pid)
    stop = None
    if args.term:
        # SIGTERM to the exporter with every hostile client still connected: how long until the
        # server has closed them all (bounded by the timeout).
        t_stop = time.perf_counter()
        os.kill(args.term, signal.SIGTERM)

        async def closed(reader):
            try:
                await reader.read(-1)
            except (OSError, ssl.SSLError):
                pass

        done, _ = await asyncio.wait([asyncio.ensure_future(closed(r)) for _, r, _ in held],
                                     timeout=target.timeout)
        stop = {"closed": len(done), "seconds": time.perf_counter() - t_stop}
    for _, _, writer in held:
        writer.close()
    base = max(s["seconds"] for s in unloaded)
    return {"unloaded": unloaded, "loaded": loaded, "unloaded_max": base,
            "bound": max(1.0, 5 * base), "held": len(held), "still_open": still_open,
            "open_failures": len(failed), "first_failures": failed[:3],
            "seconds_to_open": opened, "peak_rss_kib": peak, "stop": stop}


def malformed(kind, host):
    if kind == "random":
        return os.urandom(random.randint(1, 4000)) + b"\r\n\r\n"
    if kind == "long-line":
        return b"GET /" + b"a" * 70 * 1024 + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    if kind == "headers":
        lines = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
        return b"GET /metrics HTTP/1.1\r\nHost: " + host + b"\r\n" + lines + b"\r\n"
    if kind == "post":
        return (b"POST /metrics HTTP/1.1\r\nHost: " + host +
                b"\r\nContent-Length: 104857600\r\n\r\n" + b"x" * 1000)
    path = random.choice([b"/../../../../etc/passwd", b"/metrics/../../etc/shadow",
                          b"/%2e%2e/%2e%2e/etc/passwd", b"//etc/passwd",
                          b"/api/v1/../../../proc/self/environ", b"/..%2f..%2fetc%2fpasswd"])
    return b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"


async def flood(args):
    target = Target(args.url, timeout=args.timeout)
    kinds = ["random", "long-line", "headers", "post", "traversal"]
    results = {kind: {} for kind in kinds}
    leaked = []
    gate = asyncio.Semaphore(args.concurrency)
    host = f"{target.host}:{target.port}".encode()

    async def one(i):
        kind = kinds[i % len(kinds)]
        async with gate:
            outcome = "?"
            try:
                reader, writer = await target.connect(timeout=10)
                try:
                    writer.write(malformed(kind, host))
                    await asyncio.wait_for(writer.drain(), 10)
                except (OSError, asyncio.TimeoutError):
                    pass  # the server may close before it has read all: its answer still counts
                answer = await asyncio.wait_for(reader.read(-1), target.timeout)
                writer.close()
                if answer.startswith(b"HTTP/1."):
                    outcome = answer.split(b" ", 2)[1].decode()
                    if b"root:" in answer or b"PATH=" in answer:
                        leaked.append(kind)
                else:
                    outcome = "closed" if not answer else "garbage"
            except asyncio.TimeoutError:
                outcome = "hung"
            except OSError as error:
                outcome = f"error:{error.__class__.__name__}"
            results[kind][outcome] = results[kind].get(outcome, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    seconds = time.perf_counter() - t0
    after = await target.scrape()
    return {"results": results, "leaked": leaked, "seconds": seconds, "after": after,
            "peak_rss_kib": peak_rss_kib(args.pid)}


async def cap(args):
    target = Target(args.url)
    held = []
    for _ in range(args.open):
        try:
            held.append(await target.connect(args.source, tls=False))
        except (OSError, asyncio.TimeoutError):
            held.append(None)
    closed = 0
    deadline = time.monotonic() + 1.0
    for pair in held:
        if pair is None:
            closed += 1
            continue
        try:
            data = await asyncio.wait_for(pair[0].read(1), max(0.01, deadline - time.monotonic()))
            closed += 1 if data == b"" else 0
        except asyncio.TimeoutError:
            pass
        except OSError:
            closed += 1
    for pair in held:
        if pair:
            pair[1].close()
    return {"opened": args.open, "closed_at_once": closed}


async def idle(args):
    target = Target(args.url)
    reader, writer = await target.connect()
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    t0 = time.perf_counter()
    try:
        data = await asyncio.wait_for(reader.read(-1), 60)
        closed = True
    except asyncio.TimeoutError:
        data, closed = b"", False
    except OSError:
        data, closed = b"", True
    writer.close()
    return {"closed": closed, "seconds": time.perf_counter() - t0, "answer": data[:40].decode("latin-1")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["hold", "flood", "cap", "idle"])
    parser.add_argument("url")
    parser.add_argument("--half", type=int, default=1000)
    parser.add_argument("--silent", type=int, default=200)
    parser.add_argument("--stall-tls", type=int, default=0)
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--sources", type=int, default=64)
    parser.add_argument("--cafile")
    parser.add_argument("--user")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--term", type=int, help="hold: then SIGTERM this pid, clients connected")
    parser.add_argument("--timeout", type=float, default=30,
                        help="seconds a scrape, or a flood request's answer, may take")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--open", type=int, default=0)
    parser.add_argument("--source", default="127.0.0.1")
    args = parser.parse_args()
    raise_file_limit()
    command = {"hold": hold, "flood": flood, "cap": cap, "idle": idle}[args.command]
    print(json.dumps(asyncio.run(command(args)), default=str))


if __name__ == "__main__":
    sys.exit(main())
