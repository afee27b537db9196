// A libvirt domain's XML (libvirt::parse_domain_xml, virDomainGetXMLDesc's text, or the <domain>
// in a status file's <domstatus>, as a KubeVirt pod's libvirt writes it): vCPU counts,
// <vcpu cpuset>, vcpupin, emulatorpin and I/O threads, as the libvirt source reads them.
#include <fmt/format.h>

#include "fuzz.h"
#include "sources/libvirt/domain_xml.h"

using namespace vcpumap;

namespace {

constexpr int kMaxNumber = 1 << 20;  // what the parser takes as a count or a vCPU number

bool same(const libvirt::DomainDefinition& a, const libvirt::DomainDefinition& b) {
  return a.max_vcpus == b.max_vcpus && a.vcpus == b.vcpus && a.auto_placement == b.auto_placement &&
         a.cpuset == b.cpuset && a.vcpupins == b.vcpupins && a.emulatorpin == b.emulatorpin &&
         a.iothreads == b.iothreads;
}

// The XML libvirt would write for `definition` (no metadata).
std::string write_xml(const libvirt::DomainDefinition& definition) {
  std::string xml = "<domain type='kvm'>\n  <name>fuzz</name>\n  <vcpu";
  if (definition.auto_placement) xml += " placement='auto'";
  if (definition.cpuset) xml += fmt::format(" cpuset='{}'", definition.cpuset->to_list());
  xml += fmt::format(" current='{}'>{}</vcpu>\n", definition.vcpus, definition.max_vcpus);
  xml += fmt::format("  <iothreads>{}</iothreads>\n  <cputune>\n", definition.iothreads);
  for (const auto& [vcpu, pin] : definition.vcpupins) {
    xml += fmt::format("    <vcpupin vcpu='{}' cpuset='{}'/>\n", vcpu, pin.to_list());
  }
  if (definition.emulatorpin) {
    xml += fmt::format("    <emulatorpin cpuset='{}'/>\n", definition.emulatorpin->to_list());
  }
  xml += "  </cputune>\n</domain>\n";
  return xml;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto definition = libvirt::parse_domain_xml(text);
  if (!definition) return 0;
  // Bounds: counts are numbers the text held, within what the parser takes; I/O threads are at
  // most the larger of the count and the <iothread> elements the text has room for.
  FUZZ_CHECK(definition->max_vcpus >= 0 && definition->max_vcpus <= kMaxNumber);
  FUZZ_CHECK(definition->vcpus >= 0 && definition->vcpus <= kMaxNumber);
  FUZZ_CHECK(definition->iothreads >= 0 && static_cast<std::size_t>(definition->iothreads) <=
                                               std::max<std::size_t>(kMaxNumber, size));
  FUZZ_CHECK(definition->vcpupins.size() <= size);
  for (const auto& [vcpu, pin] : definition->vcpupins) {
    FUZZ_CHECK(vcpu >= 0 && vcpu <= kMaxNumber);
    FUZZ_CHECK(pin.end() <= CpuSet::kMaxCpu + 1);
  }
  const CpuSet host = CpuSet::first_n(4);
  if (definition->max_vcpus <= 4096) {
    // One pinning per vCPU: its own vcpupin, else <vcpu cpuset>, else every host CPU.
    const auto pins = libvirt::vcpu_pins(*definition, host);
    FUZZ_CHECK(pins.size() == static_cast<std::size_t>(definition->max_vcpus));
    for (std::size_t vcpu = 0; vcpu < pins.size(); ++vcpu) {
      const auto own = definition->vcpupins.find(static_cast<int>(vcpu));
      FUZZ_CHECK(
          pins[vcpu] ==
          (own != definition->vcpupins.end() ? own->second : definition->cpuset.value_or(host)));
    }
  }
  FUZZ_CHECK(libvirt::emulator_pin(*definition, host) ==
             definition->emulatorpin.value_or(definition->cpuset.value_or(host)));
  // Round trip: the XML libvirt would write for what was read reads back the same.
  if (definition->iothreads > kMaxNumber) return 0;  // past what a count may say
  const auto again = libvirt::parse_domain_xml(write_xml(*definition));
  FUZZ_CHECK(again.has_value() && same(*again, *definition) && !again->nova);
  // The same definition inside a status file reads the same.
  const auto in_status =
      libvirt::parse_domain_xml("<domstatus state='running' pid='1'>\n<vcpus/>\n" +
                                write_xml(*definition) + "</domstatus>\n");
  FUZZ_CHECK(in_status.has_value() && same(*in_status, *definition));
  return 0;
}
