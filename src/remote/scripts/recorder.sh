# fenton monitor's recorder: a loop that samples this box every EVERY seconds and appends one
# line per sample to REMOTE_DIR/monitor/, written there and started by monitor.sh. It needs
# only sh, awk, df, /proc and (where present) nvidia-smi.
#
# Usage: sh recorder.sh EVERY KEEP REMOTE_DIR   (EVERY and KEEP in seconds)
#
# A sample is one line: the box's Unix time, then `key=value` words; an empty value is a gap
# (nvidia-smi said [N/A], a first sample has no rate yet):
#   1764625000 cpu=12.5 mem=40.1 swap=0.0 load=0.52 rx=1200 tx=300 disk.root=41 \
#     gpu0.util=100 gpu0.mem=1234 gpu0.memtotal=81559 gpu0.temp=65 gpu0.power=301.2 jobs=ID,ID
# cpu, mem, swap and disk.* are percent; rx and tx bytes per second over every interface but
# lo; gpuN.mem and memtotal MiB, temp °C, power W.
#
# Storage is a ring: samples go to r-START (START the Unix time the file's span begins; a span
# is KEEP/10, at most an hour); a file older than KEEP/7 is thinned to one sample in six (t-START)
# and one older than KEEP removed, so the files never hold much more than KEEP.
every=$1 keep=$2 rdir=$3
mdir=$rdir/monitor
LC_ALL=C
export LC_ALL
span=$((keep / 10))
[ "$span" -gt 3600 ] && span=3600
[ "$span" -lt "$every" ] && span=$every
thin_after=$((keep / 7))

sleeper=
# Stopped (`fenton monitor stop`): the sleep ends with the loop, the pid file goes.
finish() {
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
  rm -f "$mdir/pid"
  exit 0
}
trap finish TERM INT
# A logout or a closed ssh channel is no reason to stop.
trap '' HUP PIPE

printf '%s\n' "$$" >"$mdir/pid.tmp" && mv -f "$mdir/pid.tmp" "$mdir/pid"
date +%s >"$mdir/since"
printf '%s %s %s\n' "$every" "$keep" "$span" >"$mdir/settings"
cat /proc/sys/kernel/random/boot_id >"$mdir/boot" 2>/dev/null

# `bounded SECS CMD...`: nvidia-smi on a GPU fallen off the bus and df on a hung network
# mount can block for ever.
bounded() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}
has_smi=0
command -v nvidia-smi >/dev/null 2>&1 && has_smi=1
has_timeout=0
command -v timeout >/dev/null 2>&1 && has_timeout=1

gpus() {
  [ "$has_smi" = 1 ] || return 0
  if [ "$has_timeout" = 1 ]; then
    timeout 10 nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv,noheader,nounits 2>/dev/null
  else
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv,noheader,nounits 2>/dev/null
  fi
}

# fenton jobs that run now: no `exit` file yet, and the process group or the wrapper alive.
jobs_now() {
  list=
  for j in "$rdir"/jobs/*/; do
    [ -f "${j}started" ] || continue
    [ -f "${j}exit" ] && continue
    pid='' wrapper=''
    [ -r "${j}pid" ] && read -r pid <"${j}pid"
    [ -r "${j}wrapper" ] && read -r wrapper <"${j}wrapper"
    if { [ -n "$pid" ] && kill -0 "-$pid" 2>/dev/null; } ||
      { [ -n "$wrapper" ] && kill -0 "$wrapper" 2>/dev/null; }; then
      id=${j%/}
      list=$list${list:+,}${id##*/}
    fi
  done
  printf '%s' "$list"
}

# Removes what is past KEEP and thins what is past KEEP/7.
prune() {
  for f in "$mdir"/r-* "$mdir"/t-*; do
    [ -f "$f" ] || continue
    start=${f##*/}
    start=${start#?-}
    case $start in '' | *[!0-9]*) continue ;; esac
    if [ $((start + span)) -le $((now - keep)) ]; then
      rm -f "$f"
    elif [ "${f##*/}" = "r-$start" ] && [ $((start + span)) -le $((now - thin_after)) ]; then
      awk 'NR % 6 == 1' "$f" >"$mdir/t-$start.tmp" &&
        mv -f "$mdir/t-$start.tmp" "$mdir/t-$start" && rm -f "$f"
    fi
  done
}

prev=
file=
while :; do
  now=$(date +%s)
  disks=$(bounded 5 df -Pk / "$HOME" 2>/dev/null | awk 'NR > 1 { print $1, $5 }')
  out=$(FM_GPUS=$(gpus) FM_DISKS=$disks FM_JOBS=$(jobs_now) awk -v now="$now" -v prev="$prev" '
    BEGIN {
      ng = split(ENVIRON["FM_GPUS"], gl, "\n")
      for (j = 1; j <= ng; j++) {
        line = gl[j]
        gsub(/ /, "", line)
        if (split(line, g, ",") < 6 || g[1] !~ /^[0-9]+$/) continue
        for (i = 2; i <= 6; i++) if (g[i] !~ /^[0-9.]+$/) g[i] = ""
        gpu = gpu sprintf(" gpu%s.util=%s gpu%s.mem=%s gpu%s.memtotal=%s gpu%s.temp=%s gpu%s.power=%s", g[1], g[2], g[1], g[3], g[1], g[4], g[1], g[5], g[1], g[6])
      }
    }
    FILENAME == "/proc/stat" && $1 == "cpu" { busy = $2 + $3 + $4 + $7 + $8 + $9; total = busy + $5 + $6 }
    FILENAME == "/proc/meminfo" { m[$1] = $2 }
    FILENAME == "/proc/loadavg" { load = $1 }
    FILENAME == "/proc/net/dev" && FNR > 2 {
      sub(/^ */, "")
      split($0, a, /[: ]+/)
      if (a[1] != "lo") { rx += a[2]; tx += a[10] }
    }
    END {
      split(prev, p, " ")
      cpu = ""; nrx = ""; ntx = ""
      if (p[1] != "" && now > p[1]) {
        if (total > p[3]) cpu = sprintf("%.1f", 100 * (busy - p[2]) / (total - p[3]))
        if (rx >= p[4]) nrx = sprintf("%d", (rx - p[4]) / (now - p[1]))
        if (tx >= p[5]) ntx = sprintf("%d", (tx - p[5]) / (now - p[1]))
      }
      mem = ""; swap = ""
      if (m["MemTotal:"] > 0) mem = sprintf("%.1f", 100 * (m["MemTotal:"] - m["MemAvailable:"]) / m["MemTotal:"])
      if (m["SwapTotal:"] > 0) swap = sprintf("%.1f", 100 * (m["SwapTotal:"] - m["SwapFree:"]) / m["SwapTotal:"])
      else swap = "0.0"
      d = ""
      nd = split(ENVIRON["FM_DISKS"], dl, "\n")
      for (i = 1; i <= nd; i++) {
        split(dl[i], f, " ")
        if (f[1] in seen) continue
        seen[f[1]] = 1
        sub(/%/, "", f[2])
        d = d sprintf(" disk.%s=%s", i == 1 ? "root" : "home", f[2])
      }
      printf "%s %s %s %s %s\n", now, busy, total, rx, tx
      printf "%s cpu=%s mem=%s swap=%s load=%s rx=%s tx=%s%s%s jobs=%s\n", now, cpu, mem, swap, load, nrx, ntx, d, gpu, ENVIRON["FM_JOBS"]
    }' /proc/stat /proc/meminfo /proc/loadavg /proc/net/dev 2>/dev/null)
  prev=${out%%
*}
  start=$((now - now % span))
  if [ "$file" != "$mdir/r-$start" ]; then
    file=$mdir/r-$start
    prune
  fi
  # A full disk loses samples, not the recorder.
  printf '%s\n' "${out#*
}" >>"$file" 2>/dev/null
  sleep "$every" &
  sleeper=$!
  wait "$sleeper"
  sleeper=
done
