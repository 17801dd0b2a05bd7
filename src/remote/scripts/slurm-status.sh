# fenton status on a Slurm login node: the login node's load, the partitions and nodes
# (sinfo) and the user's jobs (squeue), as sections that fenton parses
# (src/status/slurm.rs). A section starts with `@@fenton:NAME`; a command's section ends with
# `@@fenton:err LINE` for what it said on stderr and `@@fenton:rc STATUS`.
#
# Usage: sh -s -- SINFO_NODES_FORMAT SINFO_PARTITIONS_FORMAT SQUEUE_FORMAT
nodes_format=$1 partitions_format=$2 squeue_format=$3
# (After slurm-lib.sh: start times are Unix seconds, whatever the user's time format.)
LC_ALL=C
export LC_ALL
err=$(mktemp 2>/dev/null || echo "/tmp/fenton-slurm-status.$$")
trap 'rm -f "$err"' EXIT

echo "@@fenton:host $(uname -n)"
echo "@@fenton:now $(date +%s)"
echo "@@fenton:cpus $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
echo '@@fenton:load'
cat /proc/loadavg 2>/dev/null
echo '@@fenton:mem'
grep -e '^MemTotal:' -e '^MemAvailable:' /proc/meminfo 2>/dev/null

# `bounded SECS CMD...`: a scheduler that does not answer is waited on for SECS at most,
# where the box has timeout(1).
bounded() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}

# `section NAME CMD...`: CMD's stdout as the section's lines, then its stderr and status.
section() {
  echo "@@fenton:$1"
  shift
  bounded 20 "$@" 2>"$err"
  rc=$?
  if [ "$rc" = 124 ]; then echo "@@fenton:err $1 did not answer within 20 s: is slurmctld up?"; fi
  sed -n '1,4s/^/@@fenton:err /p' "$err"
  echo "@@fenton:rc $rc"
}

section sinfo-partitions sinfo -h -o "$partitions_format"
section sinfo-nodes sinfo -h -N -O "$nodes_format"
section squeue squeue -h -u "$(id -un)" -o "$squeue_format"
