"""Scrapes two exporters in turn, S times each: each second the first, half a second later the
second. Prints, on one line, for each exporter: its own CPU time per scrape (its threads'
schedstat across the whole run, s), libvirtd's CPU time per scrape (its threads' schedstat over
the half second that follows each of that exporter's scrapes, s), the median latency (s) and the
series of its last answer; then how many snapshots the first exporter took over the scrapes
(vcpumap_snapshots_total: scrapes its --cache answered are not counted). Waits first (bounded) until each answers with its libvirt series, and
one more scrape each so that start-up is not counted.

Usage: libvirt_scrape.py S LIBVIRTD_PID PID_A URL_A PID_B URL_B"""
import statistics, sys, time, urllib.request

from procstat import cpu_ns


def scrape(url):
    start = time.monotonic()
    body = urllib.request.urlopen(url, timeout=30).read().decode()
    return time.monotonic() - start, body


def series(body):
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def snapshots(body):
    for line in body.splitlines():
        if line.startswith("vcpumap_snapshots_total "):
            return float(line.split()[1])
    return float("nan")


def wait_ready(url, needle):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _, body = scrape(url)
            if needle in body:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"libvirt_scrape: {url} did not answer with {needle} in 60 s")


def main():
    scrapes, libvirtd = int(sys.argv[1]), int(sys.argv[2])
    exporters = [(int(sys.argv[3]), sys.argv[4]), (int(sys.argv[5]), sys.argv[6])]
    wait_ready(exporters[0][1], "vcpumap_libvirt_up 1")
    wait_ready(exporters[1][1], "libvirt_up 1")
    for _, url in exporters:
        scrape(url)
    time.sleep(1)
    own_before = [cpu_ns(pid) for pid, _ in exporters]
    libvirtd_ns = [0, 0]
    latencies = [[], []]
    bodies = ["", ""]
    first_body = None
    start = time.monotonic()
    for round_ in range(scrapes):
        for i, (_, url) in enumerate(exporters):
            slot = start + round_ + i * 0.5
            time.sleep(max(0.0, slot - time.monotonic()))
            before = cpu_ns(libvirtd)
            latency, bodies[i] = scrape(url)
            if first_body is None:
                first_body = bodies[i]
            time.sleep(max(0.0, slot + 0.5 - time.monotonic()))
            libvirtd_ns[i] += cpu_ns(libvirtd) - before
            latencies[i].append(latency)
    own = [cpu_ns(pid) - own_before[i] for i, (pid, _) in enumerate(exporters)]
    figures = []
    for i in range(2):
        figures += [own[i] / scrapes / 1e9, libvirtd_ns[i] / scrapes / 1e9,
                    statistics.median(latencies[i]), series(bodies[i])]
    figures.append(int(snapshots(bodies[0]) - snapshots(first_body)) + 1)
    print(" ".join(f"{x:.6f}" if isinstance(x, float) else str(x) for x in figures))


if __name__ == "__main__":
    main()
