#include "sources/libvirt/status_file.h"

#include <fcntl.h>

#include <climits>

#include "sources/libvirt/xml.h"
#include "util/fd.h"
#include "util/text.h"

namespace vcpumap::libvirt {
namespace {

std::optional<int> int_attribute(xmlNode* node, const char* name) {
  xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
  if (value == nullptr) return std::nullopt;
  const auto number = parse_i64(reinterpret_cast<const char*>(value));
  xmlFree(value);
  if (!number || *number < 0 || *number > INT_MAX) return std::nullopt;
  return static_cast<int>(*number);
}

// Fills `out` with id -> thread id for every node matching `xpath` (attributes id and tid_attr).
void collect_ids(xmlXPathContext* context, const char* xpath, const char* tid_attribute,
                 std::map<int, int>& out) {
  const auto found = eval_xpath(context, xpath);
  if (!found || found->nodesetval == nullptr) return;
  for (int i = 0; i < found->nodesetval->nodeNr; ++i) {
    xmlNode* node = found->nodesetval->nodeTab[i];
    const auto id = int_attribute(node, "id");
    const auto tid = int_attribute(node, tid_attribute);
    if (id && tid) out[*id] = *tid;
  }
}

}  // namespace

Result<StatusThreads> parse_status_xml(std::string_view xml) {
  const auto doc = parse_xml(xml, "status.xml");
  if (!doc) return make_error(ExitCode::failure, "libvirt status file is not XML");
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || xmlStrcmp(root->name, reinterpret_cast<const xmlChar*>("domstatus"))) {
    return make_error(ExitCode::failure, "libvirt status file has no <domstatus>");
  }
  StatusThreads threads;
  threads.pid = int_attribute(root, "pid").value_or(0);
  const XPathContext context(xmlXPathNewContext(doc.get()));
  // libvirt writes <vcpus><vcpu id='0' pid='1234'/></vcpus> and
  // <iothreads><iothread id='1' pid='1235'/></iothreads> (qemuDomainObjPrivateXMLFormat).
  collect_ids(context.get(), "/domstatus/vcpus/vcpu", "pid", threads.vcpu_tids);
  collect_ids(context.get(), "/domstatus/iothreads/iothread", "pid", threads.iothread_tids);
  return threads;
}

Result<StatusThreads> read_status_file(const std::filesystem::path& root, std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos) {
    return make_error(ExitCode::failure, "no libvirt status file for a domain named '{}'", name);
  }
  const auto path = root / "run/libvirt/qemu" / (std::string(name) + ".xml");
  const auto text = read_file_at(AT_FDCWD, path.c_str());
  if (!text) return make_error(ExitCode::failure, "cannot read {}", path.string());
  return parse_status_xml(*text);
}

}  // namespace vcpumap::libvirt
