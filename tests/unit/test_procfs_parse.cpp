#include <gtest/gtest.h>

#include "sources/procfs/parse.h"

namespace vcpumap::procfs {
namespace {

TEST(ParseStat, ReadsTheFieldsVirshAndPsUse) {
  // A real line from this machine's `cat /proc/self/stat`.
  const auto stat = parse_stat(
      "4212 (cat) R 4000 4212 4000 34816 4212 4194304 96 0 0 0 3 5 0 0 20 0 1 0 8380034 "
      "5812224 224 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 "
      "0\n");
  ASSERT_TRUE(stat) << stat.error().message;
  EXPECT_EQ(stat->comm, "cat");
  EXPECT_EQ(stat->state, 'R');
  EXPECT_EQ(stat->utime_ticks, 3U);
  EXPECT_EQ(stat->stime_ticks, 5U);
  EXPECT_EQ(stat->start_time_ticks, 8380034U);
  EXPECT_EQ(stat->processor, 1);
}

TEST(ParseStat, NameEndsAtTheLastParenthesis) {
  const std::string tail =
      " S 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 99 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
  const std::vector<std::string> names = {
      "a) b (c",   "x) R 1 2 3 (", ")",           "(",
      "two words", "new\nline",    "bad\xff\xfe", std::string("nul\0byte", 8)};
  for (const auto& name : names) {
    const auto stat = parse_stat("77 (" + name + ")" + tail);
    ASSERT_TRUE(stat) << name;
    EXPECT_EQ(stat->comm, name);
    EXPECT_EQ(stat->state, 'S');
    EXPECT_EQ(stat->utime_ticks, 7U);
    EXPECT_EQ(stat->processor, 1);
  }
}

TEST(ParseStat, RejectsTruncatedLines) {
  EXPECT_FALSE(parse_stat(""));
  EXPECT_FALSE(parse_stat("1 (x) S 1 2 3"));
  EXPECT_FALSE(parse_stat("1 x S 1 2 3"));
}

TEST(ParseSchedstat, ThreeNumbers) {
  const auto schedstat = parse_schedstat("46272816 5423298 106\n");
  ASSERT_TRUE(schedstat);
  EXPECT_EQ(schedstat->cpu_time_ns, 46272816U);
  EXPECT_EQ(schedstat->run_delay_ns, 5423298U);
  EXPECT_EQ(schedstat->timeslices, 106U);
  EXPECT_FALSE(parse_schedstat("1 2\n"));
  EXPECT_FALSE(parse_schedstat("1 x 3\n"));
}

TEST(ParseSched, PicksCountersAndLeavesMissingOnesEmpty) {
  const auto counters = parse_sched(
      "cat (4212, #threads: 1)\n"
      "-------------------------------------------------------------------\n"
      "se.exec_start                                :         83800.340786\n"
      "se.nr_migrations                             :                    9\n"
      "nr_voluntary_switches                        :                    4\n");
  EXPECT_EQ(counters.migrations, 9U);
  EXPECT_EQ(counters.voluntary_switches, 4U);
  EXPECT_FALSE(counters.involuntary_switches.has_value());
}

TEST(ParseStatus, AffinityList) {
  const auto affinity = parse_status_affinity(
      "Name:\tqemu\nCpus_allowed:\tf\nCpus_allowed_list:\t0-2,3\nMems_allowed:\t1\n");
  ASSERT_TRUE(affinity);
  EXPECT_EQ(affinity->to_list(), "0-3");
  EXPECT_FALSE(parse_status_affinity("Name:\tx\n"));
}

TEST(ParseCmdline, SplitsOnNul) {
  const auto argv = parse_cmdline(std::string("qemu\0-name\0a b\0", 15));
  ASSERT_EQ(argv.size(), 3U);
  EXPECT_EQ(argv[2], "a b");
  EXPECT_TRUE(parse_cmdline("").empty());
}

}  // namespace
}  // namespace vcpumap::procfs
