# shellcheck shell=bash
# Sourced by the packaging tests: what `vcpumap --help` offers, read the way a user reads it.

# subcommands VCPUMAP: the subcommands `vcpumap --help` lists, one a line.
subcommands() { "$1" --help | sed -n '/^Subcommands:/,$s/^  \([a-z][^ ]*\).*/\1/p'; }

# help_options VCPUMAP [SUBCOMMAND]: every option name that `--help` prints, one a line
# (`-d,--delay SECS` gives -d and --delay; `--collector.vm,--no-collector.vm{false}` both).
help_options() {
  "$1" ${2:+"$2"} --help | sed -n 's/^  \(-[^ ]*\).*/\1/p' | tr ',' '\n' | sed 's/{.*//'
}
