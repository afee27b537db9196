#include <libxml/parser.h>
#include <libxml/xpath.h>

#include <memory>

#include "sources/libvirt/libvirt.h"

namespace vcpumap::libvirt {
namespace {

struct DocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct ContextFree {
  void operator()(xmlXPathContext* context) const { xmlXPathFreeContext(context); }
};
struct ObjectFree {
  void operator()(xmlXPathObject* object) const { xmlXPathFreeObject(object); }
};

// The string value of an XPath expression ("" when nothing matches).
std::string xpath_string(xmlXPathContext* context, const char* expression) {
  std::unique_ptr<xmlXPathObject, ObjectFree> found(
      xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expression), context));
  if (!found) return {};
  xmlChar* text = xmlXPathCastToString(found.get());
  std::string value = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  xmlFree(text);
  return value;
}

}  // namespace

std::optional<NovaInstance> parse_nova_metadata(const std::string& domain_xml) {
  std::unique_ptr<xmlDoc, DocFree> doc(
      xmlReadMemory(domain_xml.data(), static_cast<int>(domain_xml.size()), "domain.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) return std::nullopt;
  std::unique_ptr<xmlXPathContext, ContextFree> context(xmlXPathNewContext(doc.get()));
  // nova has written several namespace versions (.../nova/1.0, 1.1, 1.2): match by local name.
  constexpr const char* kInstance =
      "/domain/metadata/*[local-name()='instance' and contains(namespace-uri(), "
      "'openstack.org/xmlns/libvirt/nova')]";
  const std::string prefix = kInstance;
  if (xpath_string(context.get(), ("count(" + prefix + ")").c_str()) == "0") return std::nullopt;
  NovaInstance nova;
  nova.name = xpath_string(context.get(), (prefix + "/*[local-name()='name']").c_str());
  nova.flavor =
      xpath_string(context.get(), (prefix + "/*[local-name()='flavor']/@name").c_str());
  nova.project = xpath_string(
      context.get(), (prefix + "/*[local-name()='owner']/*[local-name()='project']").c_str());
  nova.cpu_policy = xpath_string(
      context.get(), (prefix + "/*[local-name()='flavor']/*[local-name()='extraSpecs']"
                               "/*[local-name()='extraSpec'][@name='hw:cpu_policy']")
                         .c_str());
  return nova;
}

}  // namespace vcpumap::libvirt
