// What vcpumap reads out of libvirt's XML: nova metadata and the status file's vCPU threads.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sources/libvirt/domain_xml.h"
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

namespace vcpumap::libvirt {
namespace {

TEST(DomainXml, PinningAsVirshShowsIt) {
  // vcpupin for vCPU 0 only, <vcpu cpuset> for the others and the emulator (libvirt's
  // virDomainDefGetVcpuPinInfoHelper order).
  const auto definition = parse_domain_xml(
      "<domain type='qemu' id='3'><name>a</name><vcpu placement='static' cpuset='1-2' "
      "current='2'>3</vcpu><iothreads>1</iothreads><cputune><vcpupin vcpu='0' cpuset='0'/>"
      "</cputune></domain>");
  ASSERT_TRUE(definition);
  EXPECT_EQ(definition->max_vcpus, 3);
  EXPECT_EQ(definition->vcpus, 2);
  EXPECT_EQ(definition->iothreads, 1);
  const auto host = CpuSet::first_n(4);
  const auto pins = vcpu_pins(*definition, host);
  ASSERT_EQ(pins.size(), 3U);
  EXPECT_EQ(pins[0].to_list(), "0");
  EXPECT_EQ(pins[1].to_list(), "1-2");
  EXPECT_EQ(emulator_pin(*definition, host).to_list(), "1-2");
}

TEST(DomainXml, WithoutPinningEveryHostCpu) {
  const auto definition = parse_domain_xml(
      "<domain><vcpu>2</vcpu><cputune><emulatorpin cpuset='3'/></cputune></domain>");
  ASSERT_TRUE(definition);
  const auto host = CpuSet::first_n(4);
  EXPECT_EQ(vcpu_pins(*definition, host)[1].to_list(), "0-3");
  EXPECT_EQ(emulator_pin(*definition, host).to_list(), "3");
  EXPECT_FALSE(definition->auto_placement);
}

TEST(DomainXml, NotADomain) {
  EXPECT_FALSE(parse_domain_xml("<network/>"));
  EXPECT_FALSE(parse_domain_xml("not xml"));
}

}  // namespace
}  // namespace vcpumap::libvirt
