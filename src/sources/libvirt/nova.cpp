#include "sources/libvirt/libvirt.h"
#include "sources/libvirt/xml.h"

namespace vcpumap::libvirt {
namespace {

// The string value of an XPath expression ("" when nothing matches).
std::string xpath_string(xmlXPathContext* context, const char* expression) {
  const auto found = eval_xpath(context, expression);
  if (!found) return {};
  xmlChar* text = xmlXPathCastToString(found.get());
  std::string value = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  xmlFree(text);
  return value;
}

}  // namespace

std::optional<NovaInstance> parse_nova_metadata(const std::string& domain_xml) {
  const auto doc = parse_xml(domain_xml, "domain.xml");
  if (!doc) return std::nullopt;
  const XPathContext context(xmlXPathNewContext(doc.get()));
  // nova has written several namespace versions (.../nova/1.0, 1.1, 1.2): match by local name.
  constexpr const char* kInstance =
      "/domain/metadata/*[local-name()='instance' and contains(namespace-uri(), "
      "'openstack.org/xmlns/libvirt/nova')]";
  const std::string prefix = kInstance;
  if (xpath_string(context.get(), ("count(" + prefix + ")").c_str()) == "0") return std::nullopt;
  NovaInstance nova;
  nova.name = xpath_string(context.get(), (prefix + "/*[local-name()='name']").c_str());
  nova.flavor = xpath_string(context.get(), (prefix + "/*[local-name()='flavor']/@name").c_str());
  nova.project = xpath_string(
      context.get(), (prefix + "/*[local-name()='owner']/*[local-name()='project']").c_str());
  nova.cpu_policy =
      xpath_string(context.get(), (prefix + "/*[local-name()='flavor']/*[local-name()='extraSpecs']"
                                            "/*[local-name()='extraSpec'][@name='hw:cpu_policy']")
                                      .c_str());
  nova.emulator_threads_policy = xpath_string(
      context.get(), (prefix + "/*[local-name()='flavor']/*[local-name()='extraSpecs']"
                               "/*[local-name()='extraSpec'][@name='hw:emulator_threads_policy']")
                         .c_str());
  return nova;
}

}  // namespace vcpumap::libvirt
