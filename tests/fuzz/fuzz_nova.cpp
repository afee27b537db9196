// A libvirt domain's XML and the <nova:instance> metadata OpenStack writes into it
// (libvirt::parse_nova_metadata).
#include <fmt/format.h>

#include "fuzz.h"
#include "sources/libvirt/libvirt.h"

using namespace vcpumap;

namespace {

// Text escaped for XML character data and attribute values: markup, quotes, and the blanks an
// XML reader would otherwise normalise (CR at line ends, tab and newline in attributes).
std::string escaped(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\t':
        out += "&#9;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool same(const NovaInstance& a, const NovaInstance& b) {
  return a.name == b.name && a.flavor == b.flavor && a.project == b.project &&
         a.cpu_policy == b.cpu_policy && a.emulator_threads_policy == b.emulator_threads_policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(fuzz::as_text(data, size));
  const auto nova = libvirt::parse_nova_metadata(text);
  if (!nova) return 0;
  // Round trip: the metadata written as nova writes it reads back the same.
  const std::string xml = fmt::format(
      R"(<domain type='kvm'>
  <name>instance-0000002a</name>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>{}</nova:name>
      <nova:flavor name="{}">
        <nova:vcpus>4</nova:vcpus>
        <nova:extraSpecs>
          <nova:extraSpec name="hw:cpu_policy">{}</nova:extraSpec>
          <nova:extraSpec name="hw:emulator_threads_policy">{}</nova:extraSpec>
        </nova:extraSpecs>
      </nova:flavor>
      <nova:owner><nova:project uuid="6b3f">{}</nova:project></nova:owner>
    </nova:instance>
  </metadata>
</domain>
)",
      escaped(nova->name), escaped(nova->flavor), escaped(nova->cpu_policy),
      escaped(nova->emulator_threads_policy), escaped(nova->project));
  const auto again = libvirt::parse_nova_metadata(xml);
  FUZZ_CHECK(again.has_value() && same(*again, *nova));
  return 0;
}
