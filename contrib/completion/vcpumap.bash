# bash completion for vcpumap (bash-completion's layout: /usr/share/bash-completion/completions/).
# Subcommands and options are read from `vcpumap [SUBCOMMAND] --help` at Tab time, so they are
# always the installed binary's; VM names and PIDs come from the live host (`vcpumap
# __complete-vms`, procfs alone: fast, and no libvirt wait).

# _vcpumap_help VCPUMAP [SUBCOMMAND]: "OPTION ARG" per option (ARG "-" when it takes none).
_vcpumap_help() {
  "$1" ${2:+"$2"} --help 2>/dev/null | sed -n 's/^  \(-[^ ]*\)\(.*\)$/\1 \2/p' |
    while read -r names meta _; do
      [[ $meta == [A-Z]* && $meta != Excludes:* ]] || meta=-
      local name
      for name in ${names//,/ }; do printf '%s %s\n' "${name%%\{*}" "${meta%%:*}"; done
    done
}

_vcpumap_vms() {
  local IFS=$'\n' word
  for word in $(compgen -W "$("$1" --no-libvirt --source procfs __complete-vms 2>/dev/null |
    sed 's/[\\$`"]/\\&/g')" -- "$cur"); do
    COMPREPLY+=("$(printf '%q' "$word")")
  done
}

_vcpumap() {
  local cur prev words cword
  _init_completion || return
  local vcpumap=${words[0]} sub="" i positionals=0 help
  help=$(_vcpumap_help "$vcpumap")
  # The subcommand: the first word that is neither a global option nor a global option's value.
  for ((i = 1; i < cword; i++)); do
    if [[ -z $sub ]]; then
      case ${words[i]} in
        -*) [[ $'\n'$help == *$'\n'"${words[i]}"' '[A-Z]* ]] && ((i++)) ;;
        *) sub=${words[i]} && help=$(_vcpumap_help "$vcpumap" "$sub") ;;
      esac
    elif [[ ${words[i]} == -* ]]; then
      [[ $'\n'$help == *$'\n'"${words[i]}"' '[A-Z]* ]] && ((i++))
    else
      ((positionals++))
    fi
  done

  case $prev in
    --source) COMPREPLY=($(compgen -W 'auto bpf procfs' -- "$cur")) && return ;;
    --root) _filedir -d && return ;;
    --qmp | --web.config.file | --html) _filedir && return ;;
    -c | --connect) COMPREPLY=($(compgen -W 'qemu:///system qemu:///session' -- "$cur")) && return ;;
    --fail-on) COMPREPLY=($(compgen -W 'error warning info' -- "$cur")) && return ;;
  esac
  if [[ $prev == -o || $prev == --output || $prev == --sort ]]; then
    if [[ $sub == top ]]; then COMPREPLY=($(compgen -W 'N P D M' -- "$cur")); else _filedir; fi
    return
  fi
  # Any other option that takes a value (a number, a duration, an address): nothing to offer.
  [[ $prev == -* && $'\n'$help == *$'\n'"$prev"' '[A-Z]* ]] && return

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(cut -d' ' -f1 <<<"$help")" -- "$cur"))
    return
  fi
  case $sub in
    "") COMPREPLY=($(compgen -W "$("$vcpumap" --help 2>/dev/null |
      sed -n '/^Subcommands:/,$s/^  \([a-z][^ ]*\).*/\1/p')" -- "$cur")) ;;
    report) _filedir ;;
    record | audit | delay) _vcpumap_vms "$vcpumap" ;;
    vcpuinfo | vcpupin | emulatorpin | iothreadinfo | iothreadpin | threads)
      ((positionals == 0)) && _vcpumap_vms "$vcpumap" ;;
  esac
}
complete -F _vcpumap vcpumap
