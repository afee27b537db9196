// What vcpumap reads out of libvirt's XML: nova metadata and the status file's vCPU threads.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sources/libvirt/libvirt.h"
#include "sources/libvirt/status_file.h"

namespace vcpumap::libvirt {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(NovaMetadata, ReadsInstanceFlavorAndProject) {
  // The domain the libvirt integration test defines, as nova 27 writes it.
  const auto xml = read_text(std::string(VCPUMAP_FIXTURES) +
                             "/../integration/libvirt/domains/vcpumap-test-nova.xml");
  ASSERT_FALSE(xml.empty());
  const auto nova = parse_nova_metadata(xml);
  ASSERT_TRUE(nova);
  EXPECT_EQ(nova->name, "web-1");
  EXPECT_EQ(nova->flavor, "m1.tiny");
  EXPECT_EQ(nova->project, "demo-project");
  EXPECT_EQ(nova->cpu_policy, "");
}

TEST(NovaMetadata, OtherNamespaceVersionsAndExtraSpecs) {
  const auto nova = parse_nova_metadata(
      "<domain><metadata><instance xmlns='http://openstack.org/xmlns/libvirt/nova/1.2'>"
      "<name>db</name><flavor name='pinned.large'><extraSpecs>"
      "<extraSpec name='hw:cpu_policy'>dedicated</extraSpec>"
      "<extraSpec name='hw:emulator_threads_policy'>isolate</extraSpec></extraSpecs></flavor>"
      "<owner><project uuid='x'>ops</project></owner></instance></metadata></domain>");
  ASSERT_TRUE(nova);
  EXPECT_EQ(nova->name, "db");
  EXPECT_EQ(nova->cpu_policy, "dedicated");
  EXPECT_EQ(nova->emulator_threads_policy, "isolate");
  EXPECT_EQ(nova->project, "ops");
}

TEST(NovaMetadata, NoneOrNotXml) {
  EXPECT_FALSE(parse_nova_metadata("<domain><name>x</name></domain>"));
  EXPECT_FALSE(
      parse_nova_metadata("<domain><metadata><other:instance xmlns:other='urn:x'/>"
                          "</metadata></domain>"));
  EXPECT_FALSE(parse_nova_metadata("not xml <"));
}

TEST(StatusFile, VcpuThreadsAndOwnerPid) {
  const auto status = parse_status_xml(
      "<!-- WARNING: THIS IS AN AUTO-GENERATED FILE. -->\n"
      "<domstatus state='running' reason='booted' pid='7047'>\n"
      "  <vcpus>\n    <vcpu id='0' pid='7057'/>\n    <vcpu id='1' pid='7058'/>\n  </vcpus>\n"
      "  <domain type='qemu' id='2'><name>x</name></domain>\n</domstatus>\n");
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->pid, 7047);
  EXPECT_EQ(status->vcpu_tids.at(0), 7057);
  EXPECT_EQ(status->vcpu_tids.at(1), 7058);
  EXPECT_FALSE(parse_status_xml("<domain/>"));
  EXPECT_FALSE(parse_status_xml(""));
}

}  // namespace
}  // namespace vcpumap::libvirt
