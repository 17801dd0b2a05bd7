# fenton doctor on a Slurm login node: can this user reach the scheduler and would it take a
# job with the profile's defaults? It changes nothing (`sbatch --test-only` submits nothing).
# Prints `key=value` lines; a command's output comes one line per `key=`.
#
# Usage: sh -s -- SINFO_NODES_FORMAT JUPYTER_STATE SBATCH_OPTION...
nodes_format=$1 jupyter=$2
shift 2
# (After slurm-lib.sh. The user's SBATCH_PARTITION, SBATCH_ACCOUNT... stay: the test
# submission is what fenton run would send.)
LC_ALL=C
export LC_ALL
err=$(mktemp 2>/dev/null || echo "/tmp/fenton-slurm-doctor.$$")
trap 'rm -f "$err"' EXIT

bounded() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}

# `out KEY CMD...`: CMD's stdout and stderr as KEY= lines (50 at most), its status as KEY_code=.
out() {
  key=$1
  shift
  bounded 20 "$@" >"$err" 2>&1
  rc=$?
  sed -n "1,50s/^/$key=/p" "$err"
  echo "${key}_code=$rc"
}

printf 'env_partition=%s\n' "${SBATCH_PARTITION-}" | head -n 1
for p in sinfo squeue sbatch; do
  echo "path_$p=$(command -v "$p")"
done
if command -v sinfo >/dev/null 2>&1; then
  out partition sinfo -h -o '%P|%a'
  out node sinfo -h -N -O "$nodes_format"
fi
if command -v squeue >/dev/null 2>&1; then
  out squeue squeue -h -u "$(id -un)" -o %i
fi
if command -v sbatch >/dev/null 2>&1; then
  out test sbatch --test-only --job-name=fenton-doctor --output=/dev/null --chdir=/ "$@" --wrap true
fi
# fenton's notebook job, if one runs: how its server listens.
if [ -s "$jupyter/job" ] && command -v squeue >/dev/null 2>&1; then
  echo "jupyter_job=$(cat "$jupyter/job")"
  echo "jupyter_state=$(bounded 20 squeue -h -j "$(cat "$jupyter/job")" -o %T 2>/dev/null)"
  echo "jupyter_node=$(cat "$jupyter/node" 2>/dev/null)"
  echo "jupyter_bind=$(cat "$jupyter/bind" 2>/dev/null)"
fi
echo done=1
