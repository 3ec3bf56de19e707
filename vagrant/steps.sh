# shellcheck shell=bash disable=SC2034  # TIMES and CURRENT are read by the script that sources this file
# The step runner of vagrant/test.sh (sourced; tests/unit/vagrant/test_stdio.py sources it too).
#
#   step NAME CMD...   runs CMD as one step of the tier: prints its header, records its duration in TIMES,
#                      sets CURRENT to NAME while it runs (the EXIT trap names the failed step)
#   sane_stdio WHEN    clears O_NONBLOCK on the shared stdin, stdout and stderr (tests/utils/sane_stdio.py)
#
# Every step starts with sane standard streams, whatever an earlier command did to the inherited ones:
# stdin is a /dev/null of its own (a new open file description, which nothing before it can have touched)
# and stdout/stderr are put back into blocking mode. O_NONBLOCK belongs to the open file description that
# every process inheriting the descriptor shares; one command that sets it (QEMU's `-serial stdio` does)
# would otherwise make every later ansible command of the tier refuse to start ("Ansible requires blocking
# IO on stdin/stdout/stderr").

STEPS_REPO=${STEPS_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TIMES=()
START=$SECONDS
CURRENT=""

sane_stdio() {
  python3 "$STEPS_REPO/tests/utils/sane_stdio.py" "$@"
}

step() {
  local name=$1 t=$SECONDS
  shift
  sane_stdio "before step: $name"
  CURRENT=$name
  printf '\n===== [%4ds] %s\n' $((SECONDS - START)) "$name"
  "$@" </dev/null
  TIMES+=("$(printf '%-34s %4d s' "$name" $((SECONDS - t)))")
  CURRENT=""
}
