// The Prometheus exposition (views/prometheus_view) and the exporter's parts that need no socket:
// the single-flight snapshot cache and its gzip, the web config, basic auth, TLS versions, the
// listen address and the connection cap.
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <latch>
#include <sstream>
#include <thread>

#include "serve/server.h"
#include "serve/snapshot_cache.h"
#include "serve/tls.h"
#include "serve/web_config.h"
#include "views/prometheus_view.h"

namespace vcpumap {
namespace {

using views::escape_label_value;
using views::render_metrics;

VmThread thread(int tid, std::string name, ThreadRole role, int cpu, std::string_view affinity) {
  VmThread out;
  out.tid = tid;
  out.name = std::move(name);
  out.role = role;
  out.facts.last_cpu = cpu;
  out.facts.affinity = CpuSet::parse_list(affinity).value();
  return out;
}

Snapshot two_vm_snapshot() {
  Snapshot snapshot;
  snapshot.clock_ticks_per_second = 100;
  for (int cpu = 0; cpu < 2; ++cpu) {
    Cpu host_cpu;
    host_cpu.cpu = cpu;
    host_cpu.core = cpu;
    host_cpu.package = 0;
    host_cpu.node = 0;
    snapshot.topology.cpus.push_back(host_cpu);
  }
  Vm web;
  web.pid = 100;
  web.name = "web \"1\" \\ x\nnext";
  web.uuid = "6f1c2a9e-0b7d-4c1e-9a55-2f0e8d3b7c41";
  auto main = thread(100, "qemu-system-x86", ThreadRole::emulator_main, 0, "0-1");
  main.facts.cpu_time_ns = 2'000'000'000;
  main.facts.run_delay_ns = 500'000'000;
  main.facts.migrations = 3;
  web.threads.push_back(main);
  auto vcpu0 = thread(101, "CPU 0/KVM", ThreadRole::vcpu, 1, "1");
  vcpu0.vcpu = 0;
  vcpu0.facts.cpu_time_ns = 327'940'000'000;
  vcpu0.facts.run_delay_ns = 1'500'000'000;
  vcpu0.facts.migrations = 0;
  web.threads.push_back(vcpu0);
  // vCPU 1 on a kernel without schedstat or sched: ticks for CPU time, no delay, no migrations.
  auto vcpu1 = thread(102, "CPU 1/KVM", ThreadRole::vcpu, 0, "0-1");
  vcpu1.vcpu = 1;
  vcpu1.facts.utime_ticks = 250;
  vcpu1.facts.stime_ticks = 25;
  web.threads.push_back(vcpu1);
  auto io = thread(103, "IO io1", ThreadRole::iothread, 1, "1");
  io.iothread = "io1";
  io.facts.cpu_time_ns = 1'000;
  web.threads.push_back(io);
  LibvirtDomain domain;
  domain.id = 7;
  domain.state = "running";
  domain.vcpu_pins = {CpuSet::parse_list("0").value(), CpuSet::parse_list("0-1").value()};
  domain.nova = NovaInstance{"web-1", "m1.small", "demo", "dedicated", ""};
  web.libvirt = domain;
  snapshot.vms.push_back(web);
  return snapshot;
}

// The sample lines of a metric (name, then '{' or ' '), in order.
std::vector<std::string> samples(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(name + "{") || line.starts_with(name + " ")) out.push_back(line);
  }
  return out;
}

TEST(PrometheusEscape, EscapesBackslashQuoteNewline) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value("plain"), "plain");
}

TEST(PrometheusEscape, ReplacesInvalidUtf8AndKeepsValid) {
  EXPECT_EQ(escape_label_value("x\xffy"), "x\xEF\xBF\xBDy");
  EXPECT_EQ(escape_label_value("\xC3\xA9t\xC3\xA9"), "\xC3\xA9t\xC3\xA9");  // été
  EXPECT_EQ(escape_label_value("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                      // surrogate
  EXPECT_EQ(escape_label_value("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
}

TEST(PrometheusView, VcpuCountersAreSecondsFromSchedstat) {
  const auto text = render_metrics(two_vm_snapshot(), {});
  const auto cpu = samples(text, "vcpumap_vcpu_cpu_seconds_total");
  ASSERT_EQ(cpu.size(), 2u);
  EXPECT_NE(cpu[0].find("vcpu=\"0\"} 327.94"), std::string::npos) << cpu[0];
  // No schedstat: (250 + 25) ticks / USER_HZ 100.
  EXPECT_NE(cpu[1].find("vcpu=\"1\"} 2.75"), std::string::npos) << cpu[1];
  const auto delay = samples(text, "vcpumap_vcpu_run_delay_seconds_total");
  ASSERT_EQ(delay.size(), 1u) << "no run delay when schedstat is missing, never 0";
  EXPECT_NE(delay[0].find("vcpu=\"0\"} 1.5"), std::string::npos);
  EXPECT_EQ(samples(text, "vcpumap_vcpu_migrations_total").size(), 1u);
  const auto last = samples(text, "vcpumap_vcpu_last_cpu");
  ASSERT_EQ(last.size(), 2u);
  EXPECT_TRUE(last[0].ends_with(" 1"));
  EXPECT_TRUE(last[1].ends_with(" 0"));
}

TEST(PrometheusView, LabelsNameTheVmEscapedWithLibvirtAndNova) {
  const auto text = render_metrics(two_vm_snapshot(), {});
  const auto cpu = samples(text, "vcpumap_vcpu_cpu_seconds_total");
  ASSERT_FALSE(cpu.empty());
  EXPECT_TRUE(cpu[0].starts_with(
      "vcpumap_vcpu_cpu_seconds_total{vm=\"web \\\"1\\\" \\\\ x\\nnext\","
      "uuid=\"6f1c2a9e-0b7d-4c1e-9a55-2f0e8d3b7c41\",libvirt_id=\"7\",nova_name=\"web-1\","
      "nova_flavor=\"m1.small\",nova_project=\"demo\",vcpu=\"0\"}"))
      << cpu[0];
}

TEST(PrometheusView, AffinityCountInfoAndOffPinned) {
  const auto text = render_metrics(two_vm_snapshot(), {});
  const auto info = samples(text, "vcpumap_vcpu_affinity_info");
  ASSERT_EQ(info.size(), 2u);
  EXPECT_NE(info[1].find("cpus=\"0-1\"} 1"), std::string::npos) << info[1];
  const auto count = samples(text, "vcpumap_vcpu_affinity_cpus");
  ASSERT_EQ(count.size(), 2u);
  EXPECT_TRUE(count[1].ends_with(" 2"));
  // vCPU 0 is pinned to CPU 0 in libvirt's definition but runs on CPU 1 (affinity 1).
  const auto off = samples(text, "vcpumap_vcpu_off_pinned_cpus");
  ASSERT_EQ(off.size(), 2u);
  EXPECT_TRUE(off[0].ends_with(" 1")) << off[0];
  EXPECT_TRUE(off[1].ends_with(" 0")) << off[1];
}

TEST(PrometheusView, EmulatorIothreadAndHost) {
  const auto text = render_metrics(two_vm_snapshot(), {});
  ASSERT_EQ(samples(text, "vcpumap_emulator_cpu_seconds_total").size(), 1u);
  EXPECT_TRUE(samples(text, "vcpumap_emulator_cpu_seconds_total")[0].ends_with(" 2"));
  EXPECT_TRUE(samples(text, "vcpumap_emulator_run_delay_seconds_total")[0].ends_with(" 0.5"));
  EXPECT_TRUE(samples(text, "vcpumap_emulator_threads")[0].ends_with(" 1"));
  EXPECT_NE(samples(text, "vcpumap_emulator_affinity_info")[0].find("cpus=\"0-1\""),
            std::string::npos);
  const auto io = samples(text, "vcpumap_iothread_cpu_seconds_total");
  ASSERT_EQ(io.size(), 1u);
  EXPECT_NE(io[0].find("iothread=\"io1\"} 1e-06"), std::string::npos) << io[0];
  const auto host = samples(text, "vcpumap_host_cpu_info");
  ASSERT_EQ(host.size(), 2u);
  EXPECT_EQ(host[1], "vcpumap_host_cpu_info{cpu=\"1\",core=\"1\",package=\"0\",node=\"0\"} 1");
}

TEST(PrometheusView, EachFamilyHasOneHelpAndTypeBeforeItsSamples) {
  const auto text = render_metrics(two_vm_snapshot(), {});
  std::istringstream lines(text);
  std::set<std::string> typed;
  std::string current;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# HELP ")) continue;
    if (line.starts_with("# TYPE ")) {
      current = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(typed.insert(current).second) << "TYPE twice: " << current;
      continue;
    }
    EXPECT_TRUE(line.starts_with(current + "{") || line.starts_with(current + " "))
        << "sample outside its family block: " << line;
  }
  EXPECT_TRUE(typed.contains("vcpumap_scrape_duration_seconds"));
  EXPECT_TRUE(typed.contains("vcpumap_scrape_errors_total"));
}

TEST(PrometheusView, SameNamedVmsGetThePidLabel) {
  auto snapshot = two_vm_snapshot();
  snapshot.vms[0].libvirt.reset();
  snapshot.vms.push_back(snapshot.vms[0]);
  snapshot.vms[1].pid = 200;
  const auto cpu = samples(render_metrics(snapshot, {}), "vcpumap_vcpu_cpu_seconds_total");
  ASSERT_EQ(cpu.size(), 4u);
  EXPECT_NE(cpu[0].find("pid=\"100\""), std::string::npos);
  EXPECT_NE(cpu[2].find("pid=\"200\""), std::string::npos);
}

// Sample lines (not HELP or TYPE) whose metric name starts with `prefix`.
std::size_t series_with_prefix(const std::string& text, std::string_view prefix) {
  std::size_t count = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) count += line.starts_with(prefix) ? 1 : 0;
  return count;
}

TEST(PrometheusCollectors, VmFamilySumsTheVcpus) {
  auto snapshot = two_vm_snapshot();
  auto text = render_metrics(snapshot, {});
  EXPECT_EQ(samples(text, "vcpumap_vm_cpu_seconds_total").size(), 1u);
  EXPECT_TRUE(samples(text, "vcpumap_vm_cpu_seconds_total")[0].ends_with(" 330.69"))
      << samples(text, "vcpumap_vm_cpu_seconds_total")[0];
  // vCPU 1 has no schedstat and no sched: no sum rather than a partial one.
  EXPECT_TRUE(samples(text, "vcpumap_vm_run_delay_seconds_total").empty());
  EXPECT_TRUE(samples(text, "vcpumap_vm_migrations_total").empty());
  EXPECT_TRUE(samples(text, "vcpumap_vm_vcpus_off_pinned_cpus")[0].ends_with(" 1"));
  auto& vcpu1 = snapshot.vms[0].threads[2];
  vcpu1.facts.run_delay_ns = 500'000'000;
  vcpu1.facts.migrations = 4;
  text = render_metrics(snapshot, {});
  EXPECT_TRUE(samples(text, "vcpumap_vm_run_delay_seconds_total")[0].ends_with(" 2"));
  EXPECT_TRUE(samples(text, "vcpumap_vm_migrations_total")[0].ends_with(" 4"));
  EXPECT_NE(samples(text, "vcpumap_vm_cpu_seconds_total")[0].find("vm=\"web \\\"1\\\" \\\\ x"),
            std::string::npos)
      << "the per-VM series carry the VM labels";
}

TEST(PrometheusCollectors, SwitchedOffFamiliesAreLeftOutWhole) {
  views::Collectors only_vm;
  only_vm.vcpu = only_vm.iothread = only_vm.emulator = only_vm.affinity = false;
  const auto text = render_metrics(two_vm_snapshot(), {}, only_vm);
  for (const char* gone : {"vcpumap_vcpu_", "vcpumap_iothread_", "vcpumap_emulator_",
                           "# TYPE vcpumap_vcpu_", "# HELP vcpumap_emulator_"}) {
    EXPECT_EQ(series_with_prefix(text, gone), 0u) << gone;
  }
  EXPECT_EQ(text.find("_affinity_info"), std::string::npos);
  EXPECT_EQ(samples(text, "vcpumap_vm_cpu_seconds_total").size(), 1u);
  EXPECT_EQ(samples(text, "vcpumap_vm_info").size(), 1u);
  EXPECT_EQ(samples(text, "vcpumap_host_cpu_info").size(), 2u);
  EXPECT_EQ(samples(text, "vcpumap_scrape_success").size(), 1u);

  views::Collectors no_affinity;
  no_affinity.affinity = false;
  const auto lean = render_metrics(two_vm_snapshot(), {}, no_affinity);
  EXPECT_EQ(lean.find("_affinity_info"), std::string::npos);
  EXPECT_EQ(samples(lean, "vcpumap_vcpu_affinity_cpus").size(), 2u);

  views::Collectors no_vm;
  no_vm.vm = false;
  no_vm.waited_behind = true;  // accepted; serves nothing until the events source exists
  const auto full = render_metrics(two_vm_snapshot(), {}, no_vm);
  EXPECT_EQ(series_with_prefix(full, "vcpumap_vm_cpu_"), 0u);
  EXPECT_EQ(full.find("waited_behind"), std::string::npos);
  EXPECT_EQ(samples(full, "vcpumap_vcpu_cpu_seconds_total").size(), 2u);
}

// The series per setting that docs/metrics.md counts: per vCPU 7 (6 with affinity off), per
// I/O thread 6 (5), per VM 7 emulator (6) + 4 vm + vm_info + vm_vcpus, per host CPU 3.
TEST(PrometheusCollectors, SeriesPerSettingAsDocumented) {
  const auto count = [](const views::Collectors& collectors) {
    const auto text = render_metrics(two_vm_snapshot(), {}, collectors);
    return series_with_prefix(text, "vcpumap_");
  };
  // The fixture: 2 host CPUs, 1 VM with 2 vCPUs (one lacks delay and migrations) and 1 I/O
  // thread (no delay, no migrations), and the 6 host + exporter series.
  const std::size_t fixed =
      2 * 3 + 1 + 5 + 1 + 1 + 1;  // host CPUs, host_info, exporter, vms, vm_info, vm_vcpus
  views::Collectors all;
  EXPECT_EQ(count(all), fixed + (7 + 4) + (4 + 1) + 7 + 2);
  views::Collectors lean;
  lean.vcpu = lean.iothread = lean.emulator = lean.affinity = false;
  EXPECT_EQ(count(lean),
            fixed + 2);  // cpu seconds and off-pinned: the sums vCPU 1 can't make are absent
}

TEST(SnapshotCache, ConcurrentCallersShareOneSnapshot) {
  std::atomic<int> taken = 0;
  serve::SnapshotCache cache(
      [&]() -> Result<Snapshot> {
        ++taken;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return two_vm_snapshot();
      },
      std::chrono::seconds(60), "test");
  std::latch start(50);
  std::vector<std::thread> callers;
  std::atomic<int> answered = 0;
  for (int i = 0; i < 50; ++i) {
    callers.emplace_back([&] {
      start.arrive_and_wait();
      if (cache.get()->snapshot().ok()) ++answered;
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(taken.load(), 1);
  EXPECT_EQ(answered.load(), 50);
  EXPECT_EQ(cache.snapshots_taken(), 1u);
}

TEST(SnapshotCache, RefreshesWhenStaleAndCountsErrors) {
  int calls = 0;
  serve::SnapshotCache cache(
      [&]() -> Result<Snapshot> {
        if (++calls == 2) return Error{"proc went away"};
        return two_vm_snapshot();
      },
      std::chrono::milliseconds(0), "test");
  EXPECT_TRUE(cache.get()->snapshot().ok());
  const auto failed = cache.get();
  EXPECT_FALSE(failed->snapshot().ok());
  EXPECT_NE(failed->metrics_text().find("vcpumap_scrape_success 0"), std::string::npos);
  EXPECT_NE(failed->metrics_text().find("vcpumap_scrape_errors_total 1"), std::string::npos);
  EXPECT_EQ(failed->metrics_text().find("vcpumap_vcpu_"), std::string::npos);
  const auto again = cache.get();
  EXPECT_NE(again->metrics_text().find("vcpumap_snapshots_total 3"), std::string::npos);
  EXPECT_NE(again->json_text().find("\"vms\""), std::string::npos);
}

TEST(WebConfig, ParsesTlsAndUsersWithPathsFromTheFile) {
  auto config = serve::parse_web_config(R"(
tls_server_config:
  cert_file: server.crt
  key_file: /etc/keys/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
basic_auth_users:
  prom: $2b$05$0123456789abcdefghijkezSBOoG.jxfxmrXDMAIWDGKKClaxaYOO
)",
                                        "/etc/vcpumap");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_TRUE(config->tls.has_value());
  EXPECT_EQ(config->tls->cert_file, "/etc/vcpumap/server.crt");
  EXPECT_EQ(config->tls->key_file, "/etc/keys/server.key");
  EXPECT_EQ(config->tls->client_auth, serve::ClientAuth::require_and_verify);
  EXPECT_EQ(config->basic_auth_users.size(), 1u);
}

TEST(WebConfig, RefusesWhatItWouldIgnore) {
  EXPECT_FALSE(serve::parse_web_config("http_server_config:\n  http2: false\n", "/").ok());
  EXPECT_FALSE(serve::parse_web_config("tls_server_config:\n  cert_file: a\n", "/").ok());
  EXPECT_FALSE(
      serve::parse_web_config("basic_auth_users:\n  prom: plaintext-password\n", "/").ok());
  EXPECT_FALSE(serve::parse_web_config("tls_server_config: [1, 2\n", "/").ok());
  EXPECT_TRUE(serve::parse_web_config("", "/").ok());
}

TEST(WebConfig, RefusesAnEmptyOrFolderTlsPath) {
  // Found by fuzzing: '#' starts a YAML comment, so this cert_file is empty and named the
  // config's folder; the server failed later, on a folder, with OpenSSL's words.
  const auto commented = serve::parse_web_config(
      "tls_server_config:\n  cert_file: #server.crt\n  key_file: server.key\n", "/etc/vcpumap");
  ASSERT_FALSE(commented.ok());
  EXPECT_NE(commented.error().message.find("cert_file"), std::string::npos);
  EXPECT_FALSE(
      serve::parse_web_config("tls_server_config:\n  cert_file: a.crt\n  key_file: keys/\n", "/etc")
          .ok());
  EXPECT_TRUE(serve::parse_web_config(
                  "tls_server_config:\n  cert_file: '#a.crt'\n  key_file: a.key\n", "/etc")
                  .ok());
}

TEST(BasicAuth, ChecksBcryptAndRemembersSuccess) {
  serve::BasicAuth auth(std::map<std::string, std::string>{
      {"prom", "$2b$05$0123456789abcdefghijkezSBOoG.jxfxmrXDMAIWDGKKClaxaYOO"}});
  EXPECT_TRUE(auth.check("Basic cHJvbTpzM2NyZXQ="));       // prom:s3cret
  EXPECT_TRUE(auth.check("Basic cHJvbTpzM2NyZXQ="));       // from the cache
  EXPECT_FALSE(auth.check("Basic cHJvbTpzM2NyZXU="));      // prom:s3creu
  EXPECT_FALSE(auth.check("Basic bm9ib2R5OnMzY3JldA=="));  // nobody:s3cret
  EXPECT_FALSE(auth.check("Bearer cHJvbTpzM2NyZXQ="));
  EXPECT_FALSE(auth.check("Basic !!!"));
}

TEST(ListenAddress, ParsesV4V6AndAllInterfaces) {
  auto v4 = serve::parse_listen_address("127.0.0.1:18278");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 18278);
  auto v6 = serve::parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(serve::parse_listen_address(":9")->host, "0.0.0.0");
  EXPECT_FALSE(serve::parse_listen_address("localhost").ok());
  EXPECT_FALSE(serve::parse_listen_address("::1:80").ok());
  EXPECT_FALSE(serve::parse_listen_address("1.2.3.4:70000").ok());
}

TEST(AcceptsGzip, ReadsTheCodingsAndTheirWeights) {
  EXPECT_TRUE(serve::accepts_gzip("gzip"));
  EXPECT_TRUE(serve::accepts_gzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(serve::accepts_gzip(" br ,  * "));
  EXPECT_FALSE(serve::accepts_gzip(""));
  EXPECT_FALSE(serve::accepts_gzip("identity"));
  EXPECT_FALSE(serve::accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(serve::accepts_gzip("gzip; q=0.000, br"));
  EXPECT_FALSE(serve::accepts_gzip("xgzip"));
}

TEST(SnapshotCache, GzipsTheMetricsOncePerSnapshot) {
  const std::string text(100000, 'm');
  const std::string packed = serve::gzip(text);
  ASSERT_GE(packed.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(packed[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(packed[1]), 0x8b);
  EXPECT_LT(packed.size(), text.size() / 50);
  serve::CachedSnapshot cached(Error{"none"}, text);
  EXPECT_EQ(&cached.metrics_gzip(), &cached.metrics_gzip());  // compressed once, then kept
  EXPECT_EQ(cached.metrics_gzip(), packed);
}

// Text that does not shrink makes gzip grow its output past the first guess, several times over.
TEST(SnapshotCache, GzipOfTextThatDoesNotShrinkInflatesBackWhole) {
  std::string text(300000, '\0');
  std::uint32_t state = 12345;
  for (auto& c : text) {
    state = state * 1103515245u + 12345u;
    c = static_cast<char>(state >> 24);
  }
  const std::string packed = serve::gzip(text);
  ASSERT_FALSE(packed.empty());
  z_stream stream{};
  ASSERT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string back(text.size() + 1, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  stream.avail_in = static_cast<uInt>(packed.size());
  stream.next_out = reinterpret_cast<Bytef*>(back.data());
  stream.avail_out = static_cast<uInt>(back.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  back.resize(stream.total_out);
  inflateEnd(&stream);
  EXPECT_EQ(back, text);
}

// The exporter's renderer keeps its buffers from one scrape to the next: nothing of an earlier
// snapshot may show in a later one, whatever grew or shrank between them.
TEST(PrometheusView, ARendererReusedAcrossSnapshotsGivesWhatAFreshOneGives) {
  const Snapshot one = two_vm_snapshot();
  Snapshot two = one;
  two.vms.push_back(one.vms[0]);  // the same name and UUID: the pid label comes in
  two.vms[1].pid = 200;
  two.vms[1].threads.pop_back();
  views::Collectors no_vcpus;
  no_vcpus.vcpu = false;
  views::MetricsRenderer renderer;
  EXPECT_EQ(renderer.render(two, {}), render_metrics(two, {}));
  EXPECT_EQ(renderer.render(one, {}), render_metrics(one, {}));
  EXPECT_EQ(renderer.render(two, {}, no_vcpus), render_metrics(two, {}, no_vcpus));
  EXPECT_EQ(renderer.render(two, {}), render_metrics(two, {}));
}

TEST(ResolveMaxConnections, FitsUnderTheOpenFileLimit) {
  EXPECT_EQ(serve::resolve_max_connections(0, 20000).value(), serve::kDefaultMaxConnections);
  EXPECT_EQ(serve::resolve_max_connections(0, 1024).value(), (1024 - serve::kSpareFiles) / 2);
  EXPECT_EQ(serve::resolve_max_connections(100, 1024).value(), 100u);
  EXPECT_FALSE(serve::resolve_max_connections(1000, 1024).ok());
  EXPECT_FALSE(serve::resolve_max_connections(0, 100).ok());
}

TEST(TlsPriorities, NameTheVersionsFromMinToMax) {
  EXPECT_EQ(serve::tls_priorities(0, 0), "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
  EXPECT_EQ(serve::tls_priorities(0x0304, 0), "NORMAL:-VERS-ALL:+VERS-TLS1.3");
  EXPECT_EQ(serve::tls_priorities(0x0301, 0x0302), "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0");
}

}  // namespace
}  // namespace vcpumap
