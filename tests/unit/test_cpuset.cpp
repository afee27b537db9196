#include <gtest/gtest.h>

#include "util/cpuset.h"

namespace vcpumap {
namespace {

TEST(CpuSet, ParsesKernelLists) {
  auto set = CpuSet::parse_list("0-3,8,10-11\n");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->to_list(), "0-3,8,10-11");
  EXPECT_EQ(set->count(), 7);
  EXPECT_TRUE(set->contains(8));
  EXPECT_FALSE(set->contains(9));
  EXPECT_EQ(set->end(), 12);
}

TEST(CpuSet, ParsesVirshExclusions) {
  auto set = CpuSet::parse_virsh_list("0-3,^2,8");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->to_list(), "0-1,3,8");
}

TEST(CpuSet, RejectsMalformedListsNamingThem) {
  for (const char* bad : {"0-", "a", "1,,2", "3-1", "-1", "0-3,^", "99999999", "^1-2", "1 2"}) {
    auto set = CpuSet::parse_virsh_list(bad);
    ASSERT_FALSE(set) << bad;
    EXPECT_NE(set.error().message.find(bad), std::string::npos) << set.error().message;
    EXPECT_EQ(set.error().exit_code, ExitCode::bad_input);
  }
  EXPECT_FALSE(CpuSet::parse_list("0,^1"));
}

TEST(CpuSet, ParsesMasks) {
  auto set = CpuSet::parse_mask("00000001,00000003\n");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->to_list(), "0-1,32");
  EXPECT_FALSE(CpuSet::parse_mask("xyz"));
}

TEST(CpuSet, PrintsVirshAffinityString) {
  auto set = CpuSet::parse_list("1,3");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->to_yn(4), "-y-y");
  EXPECT_EQ(CpuSet::first_n(2).to_yn(2), "yy");
}

TEST(CpuSet, SetAlgebra) {
  const auto a = *CpuSet::parse_list("0-7");
  const auto b = *CpuSet::parse_list("4-11");
  EXPECT_EQ((a & b).to_list(), "4-7");
  EXPECT_EQ((a | b).to_list(), "0-11");
  EXPECT_EQ((a - b).to_list(), "0-3");
  EXPECT_TRUE((a & b).is_subset_of(a));
  EXPECT_TRUE(CpuSet().empty());
  EXPECT_EQ((b - b).end(), 0);
}

}  // namespace
}  // namespace vcpumap
