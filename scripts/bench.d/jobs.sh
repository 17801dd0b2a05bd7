# Jobs: `fenton run -- true` (one round trip: make the job's directory, start the wrapper in a
# tmux window, wait for its pid) against a warm `fenton exec -- true`; goal <= 2x. Then
# `fenton jobs` with 1,000 finished jobs on the box (a long history: the table shows the 20
# latest), against the same; goal <= 2x; and `fenton jobs --all`, every row.
# A config of its own gives the profile a private tmux server, ended afterwards.

jobs_config=$BENCH_WORK/jobs.toml
jobs_socket=fenton-bench-$$
{
  cat "$FENTON_CONFIG"
  printf '[profile.bench.tmux]\nsocket = "%s"\n' "$jobs_socket"
} > "$jobs_config"
chmod 600 "$jobs_config"
cleanups+=("tmux -L '$jobs_socket' kill-server 2>/dev/null")

FENTON_CONFIG=$jobs_config "$FENTON" connect -q
# A job that stays, as a user's session has one: the tmux server and its session start once
# (a server whose last window ends goes too, and the next run would start it again).
FENTON_CONFIG=$jobs_config "$FENTON" run -q -- sleep 3600 >/dev/null
exec_true=$(FENTON_CONFIG=$jobs_config hf jobs-exec "$FENTON exec -- true")
run_true=$(FENTON_CONFIG=$jobs_config hf jobs-run "$FENTON run -q -- true")
jobs_list=$(FENTON_CONFIG=$jobs_config hf jobs-list "$FENTON jobs")
count=$(ls "$BENCH_WORK/remote/jobs" | wc -l)

echo "warm fenton exec -- true:          $(ms "$exec_true") ms"
echo "fenton run -- true:                $(ms "$run_true") ms"
echo "ratio run / exec:                  $(ratio "$run_true" "$exec_true")  (goal <= 2)"
echo "fenton jobs ($count jobs):         $(ms "$jobs_list") ms"

# A long history: 1,000 finished jobs, as their wrappers leave them.
jobs_dir=$BENCH_WORK/remote/jobs
for i in $(seq -w 1 1000); do
  d=$jobs_dir/20200101-000000-$i
  mkdir -p "$d"
  printf 'train-%s\n' "$i" >"$d/name"
  echo 'python train.py --epochs 10' >"$d/cmd"
  echo 1577836800 >"$d/started"
  echo 1577840400 >"$d/ended"
  echo 0 >"$d/exit"
  printf 'epoch %s\tloss 0.25\r\n' $(seq 10) >"$d/log"
done
count=$(ls "$jobs_dir" | wc -l)
jobs_many=$(FENTON_CONFIG=$jobs_config hf jobs-list-many "$FENTON jobs")
jobs_all=$(FENTON_CONFIG=$jobs_config hf jobs-list-all "$FENTON jobs --all")
echo "fenton jobs ($count jobs, the 20 latest shown): $(ms "$jobs_many") ms"
echo "ratio jobs ($count) / exec:      $(ratio "$jobs_many" "$exec_true")  (goal <= 2)"
echo "fenton jobs --all ($count rows): $(ms "$jobs_all") ms, $(ratio "$jobs_all" "$exec_true")x exec"

# The same behind a relay that adds 25 ms each way (as `status --all` is measured): a box far
# away, as a user has it, where a round trip costs more than the box's CPU.
jobs_relay_ports=$BENCH_WORK/jobs-relay.ports
python3 "$root/scripts/bench.d/relay.py" 25 "$(cat "$BENCH_WORK/box/port")" 1 >"$jobs_relay_ports" &
cleanups+=("kill $!")
for _ in $(seq 100); do [ -s "$jobs_relay_ports" ] && break; sleep 0.1; done
read -r jobs_relay_port <"$jobs_relay_ports" || { echo "bench: the relay did not start" >&2; exit 1; }
sed "s/^  Port .*/  Port $jobs_relay_port/" "$SSH_CONFIG" >"$BENCH_WORK/jobs-relay.ssh_config"
jobs_far=$BENCH_WORK/jobs-far.toml
sed "s|^ssh_config = .*|ssh_config = \"$BENCH_WORK/jobs-relay.ssh_config\"|" "$jobs_config" >"$jobs_far"
chmod 600 "$jobs_far"
FENTON_CONFIG=$jobs_far "$FENTON" connect -q
cleanups+=("FENTON_CONFIG='$jobs_far' '$FENTON' disconnect -q")
far_exec=$(FENTON_CONFIG=$jobs_far hf jobs-far-exec "$FENTON exec -- true")
far_jobs=$(FENTON_CONFIG=$jobs_far hf jobs-far-list "$FENTON jobs")
echo "behind a 25 ms relay: exec $(ms "$far_exec") ms, jobs ($count) $(ms "$far_jobs") ms, ratio $(ratio "$far_jobs" "$far_exec")"
