"""The exporter's own cost per scrape: starts `vcpumap --source SOURCE --no-libvirt serve` on a
loopback port with `--cache 0` (so that every scrape takes a snapshot and renders it), scrapes
/metrics N+1 times one after another, and prints one JSON line: the median over the last N of
the exporter's CPU time per scrape (the sum of its threads' schedstat, ns: exact, and nothing of
the client's), the median wall time, the body's size and series, and its peak RSS (VmHWM). The
first scrape is left out: it pays the sampler's start (BPF load, opening the fleet's files).

Usage: scrape_cost.py VCPUMAP SOURCE gzip|plain N [SERVE ARGS...]"""
import gzip, http.client, json, os, re, statistics, subprocess, sys, time

from procstat import cpu_ns


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    vcpumap, source, encoding, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    log = open(os.devnull, "w")
    process = subprocess.Popen(
        [vcpumap, "--source", source, "--no-libvirt", "serve", "--listen", "127.0.0.1:0",
         "--cache", "0", *sys.argv[5:]], stdout=log, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            found = re.search(r"https?://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
        if port is None:
            sys.exit(f"scrape_cost: vcpumap serve --source {source} did not start")
        headers = {"Accept-Encoding": "gzip"} if encoding == "gzip" else {}
        cpu, wall, size, series = [], [], 0, 0
        for i in range(rounds + 1):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            before_cpu, before = cpu_ns(process.pid), time.monotonic()
            connection.request("GET", "/metrics", headers=headers)
            response = connection.getresponse()
            body = response.read()
            after = time.monotonic()
            after_cpu = cpu_ns(process.pid)
            connection.close()
            if response.status != 200:
                sys.exit(f"scrape_cost: /metrics answered {response.status}")
            if i == 0:
                continue
            cpu.append((after_cpu - before_cpu) / 1e9)
            wall.append(after - before)
            size = len(body)
            text = gzip.decompress(body) if response.getheader("Content-Encoding") == "gzip" else body
            series = sum(1 for line in text.split(b"\n") if line and not line.startswith(b"#"))
        print(json.dumps({"source": source, "encoding": encoding, "cpu": statistics.median(cpu),
                          "cpu_lo": min(cpu), "cpu_hi": max(cpu), "wall": statistics.median(wall),
                          "bytes": size, "series": series, "rss_kib": peak_rss_kib(process.pid)}))
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
