// libvirt's status file, ROOT/run/libvirt/qemu/NAME.xml (libvirt::parse_status_xml): which thread
// runs each vCPU and I/O thread.
#include <fmt/format.h>

#include "fuzz.h"
#include "sources/libvirt/status_file.h"

using namespace vcpumap;

namespace {

bool valid_ids(const std::map<int, int>& ids) {
  for (const auto& [id, tid] : ids) {
    if (id < 0 || tid < 0) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto threads = libvirt::parse_status_xml(text);
  if (!threads) return 0;
  // Bounds: ids and thread ids are what libvirt writes: numbers from 0 up, never negative.
  FUZZ_CHECK(threads->pid >= 0);
  FUZZ_CHECK(valid_ids(threads->vcpu_tids) && valid_ids(threads->iothread_tids));
  // Round trip: the status file libvirt would write for them reads back the same.
  std::string xml = fmt::format("<domstatus state='running' reason='booted' pid='{}'>\n  <vcpus>\n",
                                threads->pid);
  for (const auto& [vcpu, tid] : threads->vcpu_tids) {
    xml += fmt::format("    <vcpu id='{}' pid='{}'/>\n", vcpu, tid);
  }
  xml += "  </vcpus>\n  <iothreads>\n";
  for (const auto& [iothread, tid] : threads->iothread_tids) {
    xml += fmt::format("    <iothread id='{}' pid='{}'/>\n", iothread, tid);
  }
  xml += "  </iothreads>\n</domstatus>\n";
  const auto again = libvirt::parse_status_xml(xml);
  FUZZ_CHECK(again.ok() && again->pid == threads->pid);
  FUZZ_CHECK(again->vcpu_tids == threads->vcpu_tids);
  FUZZ_CHECK(again->iothread_tids == threads->iothread_tids);
  return 0;
}
