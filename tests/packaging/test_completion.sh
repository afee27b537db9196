#!/usr/bin/env bash
# bash and zsh completion (contrib/completion/) against the real binary and a live VM: every
# subcommand and every option that --help prints is offered, --source offers its three sources,
# `report` offers files, and a VM argument offers the running VM's name and PID. bash is driven
# through COMP_WORDS with bash-completion loaded; zsh through a real interactive zsh on a pty
# (zsh/zpty), as a user pressing Tab.
# Usage: bash tests/packaging/test_completion.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/help_options.sh"
[[ -f /usr/share/bash-completion/bash_completion ]] ||
  skip "bash-completion is not installed (Debian package bash-completion)"
find_fake_guest "${2:-}"
BIN_DIR=$(cd "$(dirname "$VCPUMAP")" && pwd)
COMPLETION_DIR="$SOURCE_DIR/contrib/completion"

VM_NAME="itest-complete-$$"
start_fake complete -name "guest=$VM_NAME,debug-threads=on" --threads 2
say "fake guest $VM_NAME pid $FAKE_PID"
mkdir -p "$TEST_TMP/files" && touch "$TEST_TMP/files/night.rec"

# bash_complete LINE: the words bash offers for LINE (completing its last word), sorted.
cat >"$TEST_TMP/bash_complete.sh" <<'EOF'
source /usr/share/bash-completion/bash_completion
source "$COMPLETION_DIR/vcpumap.bash"
PATH="$BIN_DIR:$PATH"
cd "$TEST_TMP/files" || exit 1
line=$1
read -ra COMP_WORDS <<<"$line"
[[ $line == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE=$line COMP_POINT=${#line}
function=$(complete -p vcpumap | sed -n 's/.*-F \([^ ]*\) vcpumap$/\1/p')
[[ -n $function ]] || { echo "vcpumap.bash sets no 'complete -F FUNCTION vcpumap'" >&2; exit 1; }
"$function" vcpumap "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
EOF
bash_complete() {
  COMPLETION_DIR=$COMPLETION_DIR BIN_DIR=$BIN_DIR TEST_TMP=$TEST_TMP bash "$TEST_TMP/bash_complete.sh" "$1" |
    sed '/^$/d' | sort
}

# words_missing OFFERED WANTED...: the wanted words not among the offered ones.
words_missing() {
  local offered=$1 word missing=()
  shift
  for word in "$@"; do grep -qxF -- "$word" <<<"$offered" || missing+=("$word"); done
  echo "${missing[*]}"
}

# --- bash ---------------------------------------------------------------------------------------

mapfile -t subs < <(subcommands "$VCPUMAP")
assert_eq "bash: 'vcpumap <Tab>' offers every subcommand of --help" "" \
  "$(words_missing "$(bash_complete 'vcpumap ')" "${subs[@]}")"
mapfile -t opts < <(help_options "$VCPUMAP")
assert_eq "bash: 'vcpumap -<Tab>' offers every global option" "" \
  "$(words_missing "$(bash_complete 'vcpumap -')" "${opts[@]}")"
for sub in "${subs[@]}"; do
  mapfile -t opts < <(help_options "$VCPUMAP" "$sub")
  assert_eq "bash: 'vcpumap $sub -<Tab>' offers every option of its --help" "" \
    "$(words_missing "$(bash_complete "vcpumap $sub -")" "${opts[@]}")"
done
assert_eq "bash: --source offers auto bpf procfs" $'auto\nbpf\nprocfs' "$(bash_complete 'vcpumap --source ')"
assert_eq "bash: after --source VALUE, subcommands again" $'top\ntopology' \
  "$(bash_complete 'vcpumap --source bpf to')"
assert_eq "bash: report offers files" "night.rec" "$(bash_complete 'vcpumap report ')"
assert_eq "bash: top -o offers its sort keys" $'D\nM\nN\nP' "$(bash_complete 'vcpumap top -o ')"
assert_eq "bash: vcpupin offers the live VM's name and PID" "" \
  "$(words_missing "$(bash_complete 'vcpumap vcpupin ')" "$VM_NAME" "$FAKE_PID")"
assert_eq "bash: threads completes the VM's name from a prefix" "$VM_NAME" \
  "$(bash_complete "vcpumap threads ${VM_NAME%-*}-$$")"
assert_eq "bash: record offers VMs for each argument" "$VM_NAME" \
  "$(bash_complete "vcpumap record -d 5s other ${VM_NAME%-*}-$$")"
assert_eq "bash: vcpupin VM <Tab> (the vCPU) offers no VM" "" \
  "$(bash_complete "vcpumap vcpupin $VM_NAME ")"
assert_eq "bash: serve --cache <Tab> (a number) offers nothing" "" \
  "$(bash_complete 'vcpumap serve --cache ')"

# --- zsh ------------------------------------------------------------------------------------------

if command -v zsh >/dev/null; then
  cat >"$TEST_TMP/zsh_complete.zsh" <<'EOF'
# zsh_complete.zsh COMPLETION_DIR BIN_DIR LINE...: for each LINE, "LINE<TAB>what zsh listed".
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1='%% '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; PATH=$2:\$PATH; LISTMAX=100000; zstyle ':completion:*' list-prompt ''; print READY-\$((6*7))"
zpty -r z out '*READY-42*' || exit 3
shift 2
n=0
# The first Tab may come before zle is ready: complete a throwaway line first.
for line in 'vcpumap --sou' "$@"; do
  n=$((n + 1))
  zpty -w -n z "$line"$'\t\t'
  zpty -w z $'\C-u'"print END-\$((1000+$n))"
  zpty -r z out "*END-$((1000 + n))*" || exit 4
  out=${out//$'\e'\[[0-9;?]#[A-Za-z]/}
  ((n > 1)) && print -r -- "$line"$'\t'"${${out//$'\r'/ }//$'\n'/ }"
done
zpty -d z
EOF
  zsh_lines=('vcpumap --source ' 'vcpumap serve --no-collector.' 'vcpumap top -o ' 'vcpumap '
    "vcpumap vcpupin ${VM_NAME%-*}-" 'vcpumap top --')
  (cd "$TEST_TMP/files" && timeout 60 zsh -f -o extendedglob "$TEST_TMP/zsh_complete.zsh" \
    "$COMPLETION_DIR" "$BIN_DIR" "${zsh_lines[@]}") >"$TEST_TMP/zsh.out" 2>&1
  assert_eq "zsh: an interactive zsh completes (zsh/zpty)" "0" "$?"
  zsh_for() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "$TEST_TMP/zsh.out"; }
  for source in auto bpf procfs; do
    assert_contains "zsh: --source offers $source" "$(zsh_for 'vcpumap --source ')" "$source"
  done
  for option in $(help_options "$VCPUMAP" serve | grep -- '--no-collector\.'); do
    assert_contains "zsh: serve offers $option" "$(zsh_for 'vcpumap serve --no-collector.')" "$option"
  done
  assert_contains "zsh: top -o offers D" "$(zsh_for 'vcpumap top -o ')" "D"
  for sub in "${subs[@]}"; do
    assert_contains "zsh: 'vcpumap <Tab>' offers $sub" "$(zsh_for 'vcpumap ')" "$sub"
  done
  for option in $(help_options "$VCPUMAP" top | grep -- '^--'); do
    assert_contains "zsh: top offers $option" "$(zsh_for 'vcpumap top --')" "$option"
  done
  assert_contains "zsh: vcpupin completes the live VM's name" \
    "$(zsh_for "vcpumap vcpupin ${VM_NAME%-*}-")" "$VM_NAME"
else
  say "zsh not installed: zsh part skipped"
fi
