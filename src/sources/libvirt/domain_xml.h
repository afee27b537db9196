// What one domain's XML (virDomainGetXMLDesc) says about its vCPUs and pinning: with it, one call
// per domain gives what virsh asks for with five (vCPU counts, vcpupin, emulatorpin, metadata).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.h"
#include "util/cpuset.h"

namespace vcpumap::libvirt {

struct DomainDefinition {
  int max_vcpus = 0;               // <vcpu>N</vcpu>
  int vcpus = 0;                   // <vcpu current='M'>, else N
  bool auto_placement = false;     // <vcpu placement='auto'>: numad chooses, the XML can't tell
  std::optional<CpuSet> cpuset;    // <vcpu cpuset='...'>: every vCPU's and the emulator's default
  std::map<int, CpuSet> vcpupins;  // <cputune><vcpupin vcpu='i' cpuset='...'/>
  std::optional<CpuSet> emulatorpin;  // <cputune><emulatorpin cpuset='...'/>
  int iothreads = 0;  // <iothreads>K</iothreads>, or how many <iothreadids> it lists
  std::optional<NovaInstance> nova;
};

// Parses a domain's XML, or the live definition in a status file's <domstatus>; nullopt when it
// is neither.
std::optional<DomainDefinition> parse_domain_xml(std::string_view xml);

// Each vCPU's configured pinning as virDomainGetVcpuPinInfo gives it (libvirt's
// virDomainDefGetVcpuPinInfoHelper): its <vcpupin>, else <vcpu cpuset>, else every host CPU.
std::vector<CpuSet> vcpu_pins(const DomainDefinition& definition, const CpuSet& host_cpus);
// The emulator threads' configured pinning as virDomainGetEmulatorPinInfo gives it.
CpuSet emulator_pin(const DomainDefinition& definition, const CpuSet& host_cpus);

}  // namespace vcpumap::libvirt
