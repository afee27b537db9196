#include "sources/libvirt/domain_xml.h"

#include "sources/libvirt/libvirt.h"
#include "sources/libvirt/xml.h"
#include "util/text.h"

namespace vcpumap::libvirt {
namespace {

std::optional<std::string> attribute(xmlNode* node, const char* name) {
  xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
  if (value == nullptr) return std::nullopt;
  std::string text = reinterpret_cast<const char*>(value);
  xmlFree(value);
  return text;
}

std::string content(xmlNode* node) {
  xmlChar* value = xmlNodeGetContent(node);
  std::string text = value != nullptr ? reinterpret_cast<const char*>(value) : "";
  xmlFree(value);
  return text;
}

std::optional<int> number(std::string_view text) {
  const auto value = parse_u64(trim(text));
  if (!value || *value > 1U << 20) return std::nullopt;
  return static_cast<int>(*value);
}

// The nodes an XPath expression matches, in document order.
std::vector<xmlNode*> nodes(xmlXPathContext* context, const char* expression) {
  std::vector<xmlNode*> found;
  const auto result = eval_xpath(context, expression);
  if (!result || result->nodesetval == nullptr) return found;
  for (int i = 0; i < result->nodesetval->nodeNr; ++i)
    found.push_back(result->nodesetval->nodeTab[i]);
  return found;
}

}  // namespace

std::optional<DomainDefinition> parse_domain_xml(std::string_view xml) {
  const auto doc = parse_xml(xml, "domain.xml");
  if (!doc) return std::nullopt;
  const XPathContext context(xmlXPathNewContext(doc.get()));
  // A status file (qemuDomainObjPrivateXMLFormat) holds the live definition in <domstatus>.
  std::string base = "/domain";
  if (nodes(context.get(), "/domain").empty()) {
    base = "/domstatus/domain";
    if (nodes(context.get(), base.c_str()).size() != 1) return std::nullopt;
  }
  const auto under = [&](const char* path) { return nodes(context.get(), (base + path).c_str()); };
  DomainDefinition definition;
  if (const auto vcpu = under("/vcpu"); !vcpu.empty()) {
    definition.max_vcpus = number(content(vcpu[0])).value_or(0);
    definition.vcpus = definition.max_vcpus;
    if (const auto current = attribute(vcpu[0], "current")) {
      definition.vcpus = number(*current).value_or(definition.max_vcpus);
    }
    definition.auto_placement = attribute(vcpu[0], "placement") == "auto";
    if (const auto cpuset = attribute(vcpu[0], "cpuset")) {
      if (auto parsed = CpuSet::parse_virsh_list(*cpuset)) definition.cpuset = std::move(*parsed);
    }
  }
  for (xmlNode* pin : under("/cputune/vcpupin")) {
    const auto vcpu = attribute(pin, "vcpu");
    const auto cpuset = attribute(pin, "cpuset");
    if (!vcpu || !cpuset || !number(*vcpu)) continue;
    if (auto parsed = CpuSet::parse_virsh_list(*cpuset)) {
      definition.vcpupins[*number(*vcpu)] = std::move(*parsed);
    }
  }
  if (const auto pin = under("/cputune/emulatorpin"); !pin.empty()) {
    if (const auto cpuset = attribute(pin[0], "cpuset")) {
      if (auto parsed = CpuSet::parse_virsh_list(*cpuset))
        definition.emulatorpin = std::move(*parsed);
    }
  }
  if (const auto count = under("/iothreads"); !count.empty()) {
    definition.iothreads = number(content(count[0])).value_or(0);
  }
  const auto ids = under("/iothreadids/iothread");
  definition.iothreads = std::max(definition.iothreads, static_cast<int>(ids.size()));
  definition.nova = parse_nova_metadata(std::string(xml));
  return definition;
}

std::vector<CpuSet> vcpu_pins(const DomainDefinition& definition, const CpuSet& host_cpus) {
  std::vector<CpuSet> pins;
  for (int vcpu = 0; vcpu < definition.max_vcpus; ++vcpu) {
    if (const auto it = definition.vcpupins.find(vcpu); it != definition.vcpupins.end()) {
      pins.push_back(it->second);
    } else {
      pins.push_back(definition.cpuset.value_or(host_cpus));
    }
  }
  return pins;
}

CpuSet emulator_pin(const DomainDefinition& definition, const CpuSet& host_cpus) {
  if (definition.emulatorpin) return *definition.emulatorpin;
  return definition.cpuset.value_or(host_cpus);
}

}  // namespace vcpumap::libvirt
