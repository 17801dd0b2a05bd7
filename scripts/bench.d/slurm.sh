# Slurm: a real two-node Slurm on this machine (the tests' configuration, tests/fixtures/slurm,
# with a private munged and free ports, as tests/common/slurm.rs starts it), its login node
# a sandbox box of its own whose sessions find it (SLURM_CONF). Measured against a warm
# `fenton exec -- true` on that login node: `fenton run -- true` up to the job id printed
# (goal <= 2x), beside sbatch alone, and `fenton jobs` with the jobs run made, over, and two
# running (goal <= 2x). Then the end-message watcher: 10 jobs that
# notify, watched for 30 s with a 5 s interval, and the scheduler queries it made, counted
# per minute (one squeue a round for all of them; sacct only for jobs that ended).
for program in munged slurmctld slurmd sbatch; do
  PATH=$PATH:/usr/sbin command -v "$program" >/dev/null ||
    { echo "bench: $program is missing (scripts/test installs Slurm and munge as root): slurm part skipped"; return 0; }
done
# munged wants every directory above its socket open to all: a directory of its own.
sl=$(mktemp -d /tmp/fenton-slurm-bench.XXXXXX)
mkdir -p "$sl"/munge "$sl"/ctld "$sl"/spool "$sl"/log "$sl"/gpu/n1 "$sl"/gpu/n2
chmod 755 "$sl" "$sl/munge"
for n in n1 n2; do for i in 0 1; do ln -s /dev/null "$sl/gpu/$n/nvidia$i"; done; done
head -c 1024 /dev/urandom >"$sl/munge/munge.key"
chmod 600 "$sl/munge/munge.key"
read -r p_ctld p_n1 p_n2 p_n3 < <(python3 -c '
import socket
held = [socket.socket() for _ in range(4)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
slurm_host=$(cut -d. -f1 /proc/sys/kernel/hostname)
for f in slurm.conf gres.conf; do
  # (The accounting lines of the tests' default cluster, a job completion file, in place.)
  sed -e '/^{accounting}$/r tests/fixtures/slurm/accounting-none.conf' -e '/^{accounting}$/d' \
    "tests/fixtures/slurm/$f" |
  sed -e "s|{root}|$sl|g" -e "s|{host}|$slurm_host|g" -e "s|{ctld}|$p_ctld|g" \
    -e "s|{n1}|$p_n1|g" -e "s|{n2}|$p_n2|g" -e "s|{n3}|$p_n3|g" -e "s|{min_job_age}|10|g" >"$sl/$f"
done
export SLURM_CONF=$sl/slurm.conf
sbin=/usr/sbin
"$sbin/munged" -F --socket="$sl/munge/socket" --key-file="$sl/munge/munge.key" \
  --pid-file="$sl/munge/munged.pid" --log-file="$sl/munge/munged.log" --seed-file="$sl/munge/seed" \
  >"$sl/log/munged.out" 2>&1 &
slurm_pids=($!)
# Its jobs first, while the daemons can still end them; then the daemons, then their files.
slurm_down() {
  [ "${#slurm_pids[@]}" -gt 1 ] && scancel --user="$(id -un)" 2>/dev/null && sleep 1
  kill "${slurm_pids[@]}" 2>/dev/null
  sleep 1
  rm -rf "$sl"
}
cleanups+=(slurm_down)
for _ in $(seq 100); do [ -S "$sl/munge/socket" ] && break; sleep 0.1; done
"$sbin/slurmctld" -D -f "$SLURM_CONF" >"$sl/log/ctld.out" 2>&1 &
slurm_pids+=($!)
"$sbin/slurmd" -D -N n1 -f "$SLURM_CONF" >"$sl/log/n1.out" 2>&1 &
slurm_pids+=($!)
"$sbin/slurmd" -D -N n2 -f "$SLURM_CONF" >"$sl/log/n2.out" 2>&1 &
slurm_pids+=($!)
for _ in $(seq 300); do
  [ "$(sinfo -h -N -p debug -o %t 2>/dev/null | grep -c '^idle')" = 2 ] && break
  sleep 0.2
done
[ -S "$sl/munge/socket" ] || { echo "bench: munged did not start (see above)" >&2; exit 1; }
[ "$(sinfo -h -N -p debug -o %t 2>/dev/null | grep -c '^idle')" = 2 ] ||
  { echo "bench: the Slurm nodes did not come up (see $sl/log)" >&2; exit 1; }

"$root/scripts/sandbox" start --dir "$BENCH_WORK/login" --no-profile --env "SLURM_CONF=$SLURM_CONF" >/dev/null
cleanups+=("'$root/scripts/sandbox' stop --dir '$BENCH_WORK/login' >/dev/null 2>&1")
slurm_config=$BENCH_WORK/slurm.toml
mkdir -p "$BENCH_WORK/login-remote"
cat >"$slurm_config" <<TOML
default = "cluster"
[profile.cluster]
host = "$HOST"
ssh_config = "$BENCH_WORK/login/ssh_config"
remote_dir = "$BENCH_WORK/login-remote"
scheduler = "slurm"
[profile.cluster.slurm]
watch_every = 5
[notify.webhook]
url = "http://127.0.0.1:9/hook"
TOML
chmod 600 "$slurm_config"
# The jobs `run` submits here are held (`extra`): on a cluster they run on the compute
# nodes, not on the login node, where this machine's two slurmd would run them beside the
# measurement. They are cancelled after it.
sed 's/^watch_every = 5$/watch_every = 5\nextra = ["--hold"]/' "$slurm_config" >"$BENCH_WORK/held.toml"
chmod 600 "$BENCH_WORK/held.toml"
export FENTON_CONFIG=$slurm_config
"$FENTON" connect -q
"$FENTON" run -q -- true >/dev/null
exec_true=$(hf slurm-exec "$FENTON exec -- true")
run_true=$(FENTON_CONFIG=$BENCH_WORK/held.toml hf slurm-run "$FENTON run -q -- true")
# What sbatch alone costs on this cluster, the floor under `fenton run`.
sbatch_alone=$(hf slurm-sbatch "sbatch --hold --parsable --output=/dev/null --wrap true")
scancel --user="$(id -un)"
# The list as a user has it: the jobs above over (asked about once, and kept), two running.
for _ in 1 2; do "$FENTON" run -q -- sleep 300 >/dev/null; done
for _ in $(seq 100); do
  [ "$(squeue -h -t running -u "$(id -un)" | wc -l)" = 2 ] && break
  sleep 0.1
done
"$FENTON" jobs >/dev/null 2>&1
# As a user's queue is: the jobs over long forgotten by it (MinJobAge is 10 s here, 300 s by
# default), the two running. The listing is measured beside an exec in that same state.
for _ in $(seq 600); do
  [ "$(squeue -h -t all -u "$(id -un)" | wc -l)" = 2 ] && break
  sleep 0.1
done
"$FENTON" jobs >/dev/null 2>&1
exec_again=$(hf slurm-exec-again "$FENTON exec -- true")
jobs_list=$(hf slurm-jobs "$FENTON jobs")
# What squeue alone costs, the floor under a listing with jobs running.
squeue_alone=$(hf slurm-squeue "squeue -h -t all --me -o '%A|%F|%K|%T|%r|%M|%l|%L|%N|%S'")
jobs_all=$(hf slurm-jobs-all "$FENTON jobs --all")
count=$(find "$BENCH_WORK/login-remote/jobs" -mindepth 1 -maxdepth 1 -type d | wc -l)
scancel --user="$(id -un)"
echo "warm fenton exec -- true (login node): $(ms "$exec_true") ms"
echo "fenton run -- true (to the job id):    $(ms "$run_true") ms"
echo "ratio run / exec:                      $(ratio "$run_true" "$exec_true")  (goal <= 2)"
echo "plain sbatch --hold --wrap true:       $(ms "$sbatch_alone") ms"
echo "ratio (exec + sbatch) / exec:          $(ratio "$(python3 -c "print($exec_true + $sbatch_alone)")" "$exec_true")  (the floor under run)"
echo "warm fenton exec -- true, again:       $(ms "$exec_again") ms"
echo "fenton jobs ($count Slurm jobs, 2 running): $(ms "$jobs_list") ms"
echo "ratio jobs / exec:                     $(ratio "$jobs_list" "$exec_again")  (goal <= 2)"
echo "plain squeue --me:                     $(ms "$squeue_alone") ms"
echo "ratio (exec + squeue) / exec:          $(ratio "$(python3 -c "print($exec_again + $squeue_alone)")" "$exec_again")  (the floor under jobs)"
echo "fenton jobs --all:                     $(ms "$jobs_all") ms ($(ratio "$jobs_all" "$exec_again")x)"

# The watcher: 10 jobs that notify, one watcher, 30 s.
for i in $(seq 10); do "$FENTON" run -q --notify -- sleep 25 >/dev/null 2>&1; done
watch_log=$BENCH_WORK/login-remote/jobs/.watch.log
: >"$watch_log"
sleep 30
squeues=$(grep -c ' squeue$' "$watch_log" || true)
saccts=$(grep -c ' sacct$' "$watch_log" || true)
echo "watcher, 10 jobs, interval 5 s, 30 s: $squeues squeue, $saccts sacct"
echo "scheduler queries per minute per watcher: $(( (squeues + saccts) * 2 ))  (one squeue a round: 12)"
export FENTON_CONFIG=$BENCH_WORK/config.toml
unset SLURM_CONF
