// libxml2 documents with owners: the one place that frees them, and parsing of untrusted XML
// without network access or messages on stderr.
#pragma once

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include <memory>
#include <string_view>

namespace vcpumap::libvirt {

struct XmlDocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct XPathContextFree {
  void operator()(xmlXPathContext* context) const { xmlXPathFreeContext(context); }
};
struct XPathObjectFree {
  void operator()(xmlXPathObject* object) const { xmlXPathFreeObject(object); }
};
using XmlDoc = std::unique_ptr<xmlDoc, XmlDocFree>;
using XPathContext = std::unique_ptr<xmlXPathContext, XPathContextFree>;
using XPathObject = std::unique_ptr<xmlXPathObject, XPathObjectFree>;

// Parses `text` (named `name` in libxml2's own records); null when it is not XML.
inline XmlDoc parse_xml(std::string_view text, const char* name) {
  return XmlDoc(xmlReadMemory(text.data(), static_cast<int>(text.size()), name, nullptr,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
}

// Evaluates an XPath expression; null when it matches nothing or is malformed.
inline XPathObject eval_xpath(xmlXPathContext* context, const char* expression) {
  return XPathObject(xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expression), context));
}

}  // namespace vcpumap::libvirt
