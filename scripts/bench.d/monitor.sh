# fenton monitor, measured on the box (goals from the monitor's design):
# - the recorder's CPU at its default interval (10 s), nvidia-smi included: its own and its
#   children's CPU time from /proc/PID/stat over MONITOR_SECS (default 300) seconds, as CPU
#   seconds per hour of recording and % of one core (goal <= 0.5 %), beside what one
#   `nvidia-smi --query-gpu` costs. The box's nvidia-smi is the project's stand-in answering
#   for 8 H100s (a real driver's query costs more CPU than the stand-in's sh and awk).
# - `fenton status --history 24h` with 24 h of 10 s samples of those 8 GPUs in the ring,
#   against a warm `fenton exec -- true` in the same run (goal <= 3x).

monitor_secs=${MONITOR_SECS:-300}
mbox=$BENCH_WORK/mbox
smi_bin=$BENCH_WORK/smi-bin
mkdir -p "$smi_bin" "$BENCH_WORK/mremote"
ln -sf "$root/tests/bin/nvidia-smi" "$smi_bin/nvidia-smi"
h100=$root/tests/fixtures/nvidia-smi/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt
capture=$h100:$h100:$h100:$h100:$h100:$h100:$h100:$h100
"$root/scripts/sandbox" start --dir "$mbox" --no-profile \
  --env "PATH=$smi_bin:/usr/local/bin:/usr/bin:/bin" --env "NVIDIA_SMI_CAPTURE=$capture" >/dev/null
mcfg=$BENCH_WORK/monitor.toml
printf '[profile.mon]\nhost = "%s"\nssh_config = "%s"\nremote_dir = "%s"\n' \
  "$HOST" "$mbox/ssh_config" "$BENCH_WORK/mremote" >"$mcfg"
chmod 600 "$mcfg"
mf() { FENTON_CONFIG=$mcfg "$FENTON" "$@"; }
mf connect -q
# In this order: the recorder stopped through the box, which then goes.
cleanups+=("FENTON_CONFIG='$mcfg' '$FENTON' monitor stop -q; FENTON_CONFIG='$mcfg' '$FENTON' disconnect -q; '$root/scripts/sandbox' stop --dir '$mbox' >/dev/null 2>&1")
mdir=$BENCH_WORK/mremote/monitor

# -- the recorder's CPU
mf monitor start -q
read -r rpid <"$mdir/pid"
hz=$(getconf CLK_TCK)
# utime stime cutime cstime: fields 14-17, counted after the `(comm)` field, which may hold spaces.
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 + $14 + $15 }'; }
samples() { cat "$mdir"/r-* 2>/dev/null | wc -l; }
t0=$(date +%s.%N) c0=$(ticks "$rpid") n0=$(samples)
sleep "$monitor_secs"
t1=$(date +%s.%N) c1=$(ticks "$rpid") n1=$(samples)
# One query as the recorder makes it, 50 times, on the same box: CPU from getrusage.
smi_cpu=$(PATH=$smi_bin:$PATH NVIDIA_SMI_CAPTURE=$capture python3 -c '
import resource, subprocess
q = ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw", "--format=csv,noheader,nounits"]
n = 50
for _ in range(n):
    subprocess.run(q, stdout=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print((r.ru_utime + r.ru_stime) / n)')
read -r rec_cpu rec_hour rec_pct sample_ms smi_hour smi_ms smi_share < <(python3 -c '
import sys
t0, t1, c0, c1, hz, n0, n1, smi = map(float, sys.argv[1:])
cpu = (c1 - c0) / hz
wall = t1 - t0
n = max(n1 - n0, 1)
hour = cpu / wall * 3600
smi_hour = smi * 3600 / 10
print("%.2f %.1f %.3f %.1f %.1f %.1f %.0f" % (cpu, hour, 100 * cpu / wall, 1000 * cpu / n, smi_hour, 1000 * smi, 100 * smi_hour / hour))
' "$t0" "$t1" "$c0" "$c1" "$hz" "$n0" "$n1" "$smi_cpu")

# -- status --history 24h: the ring filled with 24 h of samples in the recorder's format (an
# hour a file), then the recorder started again to add its own.
mf monitor stop -q
rm -f "$mdir"/[bcrt]-*
awk -v now="$(date +%s)" -v dir="$mdir" 'BEGIN {
  srand(1)
  for (t = now - 86400; t <= now; t += 10) {
    line = sprintf("%d cpu=%.1f mem=%.1f swap=0.0 load=%.2f rx=%d tx=%d disk.root=41 disk.home=67", t, rand() * 100, 40 + rand() * 20, rand() * 8, rand() * 1e6, rand() * 1e5)
    for (g = 0; g < 8; g++)
      line = line sprintf(" gpu%d.util=%d gpu%d.mem=%d gpu%d.memtotal=81559 gpu%d.temp=%d gpu%d.power=%.2f", g, rand() * 100, g, rand() * 81559, g, g, 30 + rand() * 50, g, 70 + rand() * 630)
    f = dir "/r-" (t - t % 3600)
    print line " jobs=" > f
  }
}'
mf monitor start -q
# Its first sample sums up the finished hours (b-START): time what a user gets after that.
for _ in $(seq 300); do
  set -- "$mdir"/b-*
  [ $# -ge 24 ] && break
  sleep 0.1
done
ring=$(du -sk "$mdir" | awk '{ print $1 }')
exec_true=$(FENTON_CONFIG=$mcfg hf monitor-exec "$FENTON exec -- true")
history=$(FENTON_CONFIG=$mcfg hf monitor-history "$FENTON status --history 24h")
history_json=$(FENTON_CONFIG=$mcfg hf monitor-history-json "$FENTON status --history 24h --json")
# The box's part alone: monitor.sh's history mode run directly, as fenton sends it.
box_side=$(hf monitor-box-side "sh $root/src/remote/scripts/monitor.sh history $BENCH_WORK/mremote 86400 55")

echo "recorder, every 10 s, 8 GPUs (nvidia-smi stand-in), over $monitor_secs s: $rec_cpu CPU s for $((n1 - n0)) samples"
echo "recorder CPU per hour of recording:     $rec_hour s  ($rec_pct % of one core; goal <= 0.5 %)"
echo "recorder CPU per sample:                $sample_ms ms"
echo "one nvidia-smi --query-gpu (stand-in):  $smi_ms ms CPU; at 10 s, $smi_hour s an hour ($smi_share % of the recorder's)"
echo "ring: 24 h of 10 s samples, 8 GPUs:     $ring KiB (samples and their summaries)"
echo "warm fenton exec -- true:               $(ms "$exec_true") ms"
echo "fenton status --history 24h:            $(ms "$history") ms"
echo "fenton status --history 24h --json:     $(ms "$history_json") ms"
echo "monitor.sh history on the box alone:    $(ms "$box_side") ms"
echo "ratio history 24h / exec true:          $(ratio "$history" "$exec_true")  (goal <= 3; look into it past 2)"
