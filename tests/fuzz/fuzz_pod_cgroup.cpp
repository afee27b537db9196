// A process's /proc/PID/cgroup read for the Kubernetes pod it runs in
// (kubernetes::parse_pod_cgroup): kubelet's systemd and cgroupfs layouts, any hierarchy.
#include "fuzz.h"
#include "sources/platform/kubernetes.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto pod = kubernetes::parse_pod_cgroup(text);
  if (!pod) return 0;
  // A UID of hex digits and dashes, a container id of hex digits, both from a kubepods path.
  FUZZ_CHECK(!pod->pod_uid.empty() && pod->pod_uid.size() <= 64);
  for (const char c : pod->pod_uid) {
    FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-');
  }
  for (const char c : pod->container_id)
    FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  FUZZ_CHECK(text.find("kubepods") != std::string_view::npos);
  FUZZ_CHECK(text.find(pod->container_id) != std::string_view::npos);
  return 0;
}
