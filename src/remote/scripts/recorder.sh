# fenton monitor's recorder: a loop that samples this box every EVERY seconds and appends one
# line per sample to REMOTE_DIR/monitor/, written there and started by monitor.sh. It needs
# only sh, awk, df, /proc and (where present) nvidia-smi.
#
# Usage: sh recorder.sh EVERY KEEP REMOTE_DIR   (EVERY and KEEP in seconds)
#
# A sample is one line: the box's Unix time, then `key=value` words; an empty value is a gap
# (nvidia-smi said [N/A], a first sample has no rate yet):
#   1764625000 cpu=12.5 mem=40.1 swap=0.0 load=0.52 rx=1200 tx=300 disk.root=41 \
#     gpu0.util=100 gpu0.mem=1234 gpu0.memtotal=81559 gpu0.temp=65 gpu0.power=301.2 jobs=ID,ID \
#     procs=0/4242/tom/1200/ID,0/4300/ann/34/
# cpu, mem, swap and disk.* are percent; rx and tx bytes per second over every interface but
# lo; gpuN.mem and memtotal MiB, temp °C, power W; procs (only when a GPU has one) the GPUs'
# compute processes as GPU/PID/USER/MIB/JOB, JOB the fenton job's id when it is one's.
#
# Storage is a ring: samples go to r-START (START the Unix time the file's span begins; a span
# is KEEP/10, at most an hour); a file older than KEEP/7 is thinned to one sample in six (t-START)
# and one older than KEEP removed, so the files never hold much more than KEEP. Each minute
# of r-START is also summed up as it ends, in running sums (c-START, see summarize), which
# `status --history` reads instead of the samples over hours; a finished file's sums at each
# ten minutes (b-START) stay when it is thinned, for charts over days.
#
# Alerts: with monitor/alerts.conf (`NAME [THRESHOLD [PERCENT]]` lines) and channel files in
# monitor/notify.d (as a job's: see job.sh, whose fj_send and fj_jstr are written above this),
# each sample is checked for the conditions named there; a condition that holds long enough is
# sent once an hour at most, and once "recovered" when it ends (monitor/alert.state keeps
# `KEY SINCE SENT ALERTED VALUE` lines; what was sent goes to monitor/alerts.log). The OOM
# counter is read from FENTON_VMSTAT when set (the tests' stand-in), else /proc/vmstat; the
# OOM alert names the fenton jobs it ended (see oom_hit).
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
old_boot=
[ -r "$mdir/boot" ] && read -r old_boot <"$mdir/boot"
cat /proc/sys/kernel/random/boot_id >"$mdir/boot" 2>/dev/null
new_boot=
read -r new_boot <"$mdir/boot"
fj_n=$mdir/notify.d
vmstat=${FENTON_VMSTAT:-/proc/vmstat}
host=$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)
host=$(printf '%s' "$host" | tr -cd 'A-Za-z0-9.-')

# alert KIND KEY TEXT: KIND is alert or recovered; one message on every configured channel.
alert() {
  title="fenton on $host: $3"
  if [ "$1" = alert ]; then prio=high tags=warning; else prio=default tags=white_check_mark; fi
  if [ -f "$fj_n/telegram.curl" ]; then
    fj_send telegram "$(printf '{"chat_id":%s,"text":%s}' "$(cat "$fj_n/telegram.chat")" "$(fj_jstr "$title")")" \
      'Content-Type: application/json'
  fi
  if [ -f "$fj_n/ntfy.curl" ]; then
    fj_send ntfy "$3" 'Content-Type: text/plain; charset=utf-8' "Title: fenton $1 on $host" \
      "Priority: $prio" "Tags: fenton,$tags"
  fi
  if [ -f "$fj_n/webhook.curl" ]; then
    fj_send webhook "$(printf '{"source":"fenton","host":%s,"alert":%s,"state":"%s","title":%s,"text":%s}' \
      "$(fj_jstr "$host")" "$(fj_jstr "$2")" "$1" "$(fj_jstr "$title")" "$(fj_jstr "$3")")" \
      'Content-Type: application/json'
  fi
}

# Checks the sample $1 against alerts.conf and alert.state; sends what is due, in the
# background so a slow channel never delays the samples.
alerts() {
  [ -f "$mdir/alerts.conf" ] && [ -d "$fj_n" ] || return 0
  oom=$(awk '$1 == "oom_kill" { print $2 }' "$vmstat" 2>/dev/null)
  hit='' hit_id=''
  if [ "$oom" != "$oom_seen" ]; then
    oom_hit
    oom_seen=$oom
  fi
  [ -f "$mdir/alert.state" ] || : >"$mdir/alert.state"
  todo=$(FM_SAMPLE=$1 FM_OOM=$oom FM_HIT=$hit FM_HIT_ID=$hit_id awk -v now="$now" -v out="$mdir/alert.state.tmp" '
    function dur(s) { return s >= 3600 ? int(s / 3600) "h" int(s % 3600 / 60) "m" : s >= 60 ? int(s / 60) "m" : s "s" }
    FILENAME ~ /alerts\.conf$/ { on[$1] = 1; t1[$1] = $2; t2[$1] = $3; next }
    { since[$1] = $2; sent[$1] = $3; up[$1] = $4; val[$1] = $5; known[$1] = 1 }
    END {
      n = split(ENVIRON["FM_SAMPLE"], w, " ")
      for (i = 2; i <= n; i++) { eq = index(w[i], "="); if (eq) v[substr(w[i], 1, eq - 1)] = substr(w[i], eq + 1) }
      for (k in v) {
        if (k ~ /^gpu[0-9]+\.util$/ && v[k] != "" && on["gpu_idle"]) {
          g = substr(k, 4, index(k, ".") - 4); key = "gpu_idle." g
          c[key] = v["jobs"] != "" && v[k] + 0 <= t2["gpu_idle"] + 0; hold[key] = t1["gpu_idle"]
          txt[key] = "GPU " g " idle (" v[k] "% busy) for %s while fenton job " v["jobs"] " runs: hung, or starved of data? fenton logs " v["jobs"]
          ok[key] = v["jobs"] == "" ? "no fenton job runs any more; GPU " g " is not watched" : "GPU " g " is busy again (" v[k] "%)"
        }
        if (k ~ /^gpu[0-9]+\.temp$/ && v[k] != "" && on["gpu_temp"]) {
          g = substr(k, 4, index(k, ".") - 4); key = "gpu_temp." g
          c[key] = v[k] + 0 >= t1["gpu_temp"] + 0; hold[key] = 0
          txt[key] = "GPU " g " at " v[k] " C (limit " t1["gpu_temp"] ") for %s: it slows down when hot; check its fans and airflow"
          ok[key] = "GPU " g " is back to " v[k] " C"
        }
        if (k ~ /^disk\./ && v[k] != "" && on["disk"]) {
          key = k
          c[key] = v[k] + 0 >= t1["disk"] + 0; hold[key] = 0
          txt[key] = "disk " substr(k, 6) " " v[k] "% full for %s: free space (fenton exec -- du -sh ~/*) before jobs fail"
          ok[key] = "disk " substr(k, 6) " is down to " v[k] "%"
        }
      }
      if (on["oom"] && ENVIRON["FM_OOM"] != "") {
        o = ENVIRON["FM_OOM"] + 0
        if (known["oom"] && o > val["oom"] + 0) {
          if (now - sent["oom"] >= 3600) {
            if (ENVIRON["FM_HIT"] != "")
              print "alert oom the kernel killed fenton job " ENVIRON["FM_HIT"] " for memory (" o - val["oom"] " OOM kill(s)): fenton logs " ENVIRON["FM_HIT_ID"]
            else
              print "alert oom the kernel killed a process for memory (" o - val["oom"] " OOM kill(s), job(s) running: " (v["jobs"] == "" ? "none" : v["jobs"]) "): fenton jobs shows which ended"
            sent["oom"] = now
          }
        }
        since["oom"] = since["oom"] == "" ? now : since["oom"]; val["oom"] = o; keep["oom"] = 1
      }
      for (key in known) if (!(key in c) && key != "oom") c[key] = 0
      for (key in c) {
        if (c[key]) {
          if (since[key] == "") since[key] = now
          if (now - since[key] >= hold[key] + 0 && (!up[key] || now - sent[key] >= 3600)) {
            t = txt[key]; sub(/%s/, dur(now - since[key]), t)
            print "alert " key " " t
            sent[key] = now; up[key] = 1
          }
          keep[key] = 1
        } else if (up[key]) {
          print "recovered " key " " (key in ok ? ok[key] : key " is over")
        }
      }
      for (key in keep) printf "%s %s %s %s %s\n", key, since[key], sent[key] + 0, up[key] + 0, val[key] > out
    }' "$mdir/alerts.conf" "$mdir/alert.state" 2>/dev/null)
  mv -f "$mdir/alert.state.tmp" "$mdir/alert.state" 2>/dev/null
  [ -n "$todo" ] || return 0
  printf '%s\n' "$todo" | while read -r kind key text; do
    printf '%s %s %s %s\n' "$now" "$kind" "$key" "$text"
    alert "$kind" "$key" "$text"
  done >>"$mdir/alerts.log" 2>&1 &
}

# `bounded SECS CMD...`: nvidia-smi on a GPU fallen off the bus and df on a hung network
# mount can block for ever.
bounded() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}
has_smi=0
command -v nvidia-smi >/dev/null 2>&1 && has_smi=1
has_timeout=0
command -v timeout >/dev/null 2>&1 && has_timeout=1

# `smi ARGS...`: nvidia-smi, bounded where the box has timeout(1).
smi() {
  if [ "$has_timeout" = 1 ]; then
    timeout 10 nvidia-smi "$@" 2>/dev/null
  else
    nvidia-smi "$@" 2>/dev/null
  fi
}

gpus() {
  [ "$has_smi" = 1 ] || return 0
  smi --query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,pci.bus_id --format=csv,noheader,nounits
}

# The GPUs' compute processes (`BUS_ID, PID, MIB` lines), asked only when a GPU in $1 (gpus'
# lines) holds memory: a process with a context on a GPU always does, so an idle box costs
# no second nvidia-smi.
apps() {
  used=0
  while IFS=, read -r _ _ m _; do
    case $m in *[1-9]* | *N/A*) used=1 ;; esac
  done <<EOF
$1
EOF
  [ "$used" = 1 ] || return 0
  smi --query-compute-apps=gpu_bus_id,pid,used_gpu_memory --format=csv,noheader,nounits
}

# fenton jobs that run now: no `exit` file yet, and the process group or the wrapper alive.
# jobs becomes their ids (comma-separated), groups ` PGID:ID` words.
jobs_now() {
  list='' groups=''
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
      case $pid in '' | *[!0-9]*) ;; *) groups="$groups $pid:${id##*/}" ;; esac
    fi
  done
  jobs=$list
}

# The fenton jobs the OOM killer ended, when the counter moved: of those that ran in the last
# three samples, each that ended by SIGKILL (exit 137) within that time, or whose process
# group is gone while its wrapper records the end. hit becomes `ID (NAME)`, comma-separated,
# and hit_id the first ID.
oom_hit() {
  since=$((now - 3 * every - 5))
  seen=, all=$jobs_2,$jobs_1,$jobs
  set -f
  IFS=,
  for id in $all; do
    IFS=$ifs
    case $id in '' | */* | .*) continue ;; esac
    case $seen in *",$id,"*) continue ;; esac
    seen=$seen$id,
    j=$rdir/jobs/$id
    code='' ended='' pid='' name=''
    [ -r "$j/exit" ] && read -r code <"$j/exit"
    [ -r "$j/ended" ] && read -r ended <"$j/ended"
    [ -r "$j/pid" ] && read -r pid <"$j/pid"
    case $ended in '' | *[!0-9]*) ended=0 ;; esac
    case $pid in '' | 0 | 1 | *[!0-9]*) pid='' ;; esac
    if [ -f "$j/exit" ]; then
      if [ "$code" != 137 ] || [ "$ended" -lt "$since" ]; then continue; fi
    elif [ -z "$pid" ] || kill -0 "-$pid" 2>/dev/null; then
      continue
    fi
    [ -r "$j/name" ] && read -r name <"$j/name"
    name=$(printf '%s' "$name" | tr -cd 'A-Za-z0-9._-')
    hit=$hit${hit:+, }"$id ($name)"
    [ -n "$hit_id" ] || hit_id=$id
  done
  IFS=$ifs
  set +f
}

# Sums up the samples of r-START in minutes, as running sums: one line per minute, stamped
# with its end T, holding what the file's samples up to T add up to: their count, then each
# key's sum, `@COUNT` after one that fewer samples had, then `.`, which says the line is
# whole; the keys are named, in that order, by the `keys K...` line before it (written again
# when one is added). Any span of whole minutes of the file is then the difference of two
# lines, so `status --history` reads one line per bucket edge instead of every minute. With
# LIMIT (the file still grows) the minutes that ended by then are appended to c-START;
# without (the file is finished) all of them, and b-START gets the last line of each ten
# minutes, which the thinned file keeps (and which says the file is summed up whole). A
# minute is summed once: the sums go on from the last line, never reading older ones again.
summarize() {
  sm_c=$mdir/c-${1##*/r-} sm_b=$mdir/b-${1##*/r-}
  set -- "$1" "${2:-}"
  [ -f "$sm_c" ] && set -- "$@" "$sm_c"
  # shellcheck disable=SC2016 # awk's own $ fields
  if awk -v limit="$2" -v cin="${3:-}" -v cout="$sm_c" -v bfile="$sm_b.tmp" '
    # A line of sums out, named by the keys line h; b-START keeps the last of ten minutes.
    function out(l, h,   t, b) {
      if (limit != "") return
      t = substr(l, 1, index(l, " ") - 1)
      b = t % 600 ? t - t % 600 + 600 : t + 0
      if (bl != "" && b != bb) {
        if (blh != bh) print blh > bfile
        print bl > bfile
        bh = blh
      }
      bb = b; bl = l; blh = h
    }
    function minute(   i, k, l) {
      if (no != named) {
        keys = "keys"
        for (i = 1; i <= no; i++) keys = keys " " order[i]
        print keys >> cout
        named = no
      }
      l = cur " " nn
      for (i = 1; i <= no; i++) {
        k = order[i]
        l = l " " sprintf("%.15g", s[k]) (c[k] != nn ? "@" c[k] : "")
      }
      l = l " ."
      print l >> cout
      out(l, keys)
    }
    # The sums go on from the last whole line.
    function resume(   w, m, i, v, at) {
      loaded = 1
      if (last == "") return
      m = split(last, w, " ")
      no = split(keys, order, " ") - 1
      for (i = 1; i <= no; i++) order[i] = order[i + 1]
      delete order[no + 1]
      named = no
      done = w[1] + 0; nn = w[2] + 0
      for (i = 1; i <= no; i++) {
        v = w[i + 2]; at = index(v, "@")
        s[order[i]] = (at ? substr(v, 1, at - 1) : v) + 0
        c[order[i]] = at ? substr(v, at + 1) + 0 : nn
      }
    }
    BEGIN { done = -1; if (limit == "") printf "" > bfile }
    FILENAME == cin {
      if (substr($0, 1, 5) == "keys ") hdr = $0
      else if (substr($0, length($0) - 1) == " .") { last = $0; keys = hdr; out($0, hdr) }
      next
    }
    {
      if (!loaded) resume()
      t = substr($0, 1, index($0, " ") - 1)
      if (t !~ /^[0-9]+$/) next
      t = t % 60 ? t - t % 60 + 60 : t + 0
      if (t <= done || (limit != "" && t > limit + 0)) next
      if (t != cur) { if (cur != "") minute(); cur = t }
      nn++
      for (i = 2; i <= NF; i++) {
        eq = index($i, "=")
        if (eq < 2) continue
        k = substr($i, 1, eq - 1)
        v = substr($i, eq + 1)
        if (k == "jobs" || v !~ /^-?[0-9.]+$/) continue
        if (!(k in c)) order[++no] = k
        s[k] += v
        c[k]++
      }
    }
    END {
      if (cur != "") minute()
      if (bl != "") {
        if (blh != bh) print blh > bfile
        print bl > bfile
      }
    }' ${3:+"$3"} "$1" 2>/dev/null; then
    [ -n "$2" ] || mv -f "$sm_b.tmp" "$sm_b"
  else
    # A full disk leaves no half line: the file is summed up again from its samples.
    rm -f "$sm_c" "$sm_b.tmp"
  fi
  return 0
}

# Removes what is past KEEP, thins what is past KEEP/7 (keeping its ten-minute sums) and sums
# up finished files that a stopped recorder left unsummed (c- and b-START go with their file).
prune() {
  for f in "$mdir"/r-* "$mdir"/t-*; do
    [ -f "$f" ] || continue
    start=${f##*/}
    start=${start#?-}
    case $start in '' | *[!0-9]*) continue ;; esac
    if [ $((start + span)) -le $((now - keep)) ]; then
      rm -f "$f" "$mdir/c-$start" "$mdir/b-$start"
    elif [ "${f##*/}" = "r-$start" ] && [ $((start + span)) -le $((now - thin_after)) ]; then
      [ -f "$mdir/b-$start" ] || summarize "$f"
      awk 'NR % 6 == 1' "$f" >"$mdir/t-$start.tmp" &&
        mv -f "$mdir/t-$start.tmp" "$mdir/t-$start" && rm -f "$f" "$mdir/c-$start"
    elif [ "${f##*/}" = "r-$start" ] && [ $((start + span)) -le "$now" ] && [ ! -f "$mdir/b-$start" ]; then
      summarize "$f"
    fi
  done
}

# The summaries of a recorder of before (means per minute and per ten minutes, m-, p- and
# d-START) go: prune sums up their files again in running sums.
rm -f "$mdir"/m-* "$mdir"/p-* "$mdir"/d-*

if [ -n "$old_boot" ] && [ "$old_boot" != "$new_boot" ] && [ -f "$mdir/alerts.conf" ] &&
  grep -q '^reboot' "$mdir/alerts.conf" && [ -d "$fj_n" ]; then
  now=$(date +%s)
  printf '%s alert reboot the box is back after a reboot; jobs that ran before it are gone: fenton jobs\n' "$now" >>"$mdir/alerts.log"
  alert alert reboot 'the box is back after a reboot; jobs that ran before it are gone: fenton jobs' >>"$mdir/alerts.log" 2>&1 &
fi

prev=
file=
jobs_1='' jobs_2='' oom_seen=''
ifs=$IFS
minute=
while :; do
  now=$(date +%s)
  disks=$(bounded 5 df -Pk / "$HOME" 2>/dev/null | awk 'NR > 1 { print $1, $5 }')
  jobs_now
  gpu_lines=$(gpus)
  out=$(FM_GPUS=$gpu_lines FM_APPS=$(apps "$gpu_lines") FM_GROUPS=$groups FM_DISKS=$disks FM_JOBS=$jobs awk -v now="$now" -v prev="$prev" '
    BEGIN {
      ng = split(ENVIRON["FM_GPUS"], gl, "\n")
      for (j = 1; j <= ng; j++) {
        line = gl[j]
        gsub(/ /, "", line)
        if (split(line, g, ",") < 6 || g[1] !~ /^[0-9]+$/) continue
        for (i = 2; i <= 6; i++) if (g[i] !~ /^[0-9.]+$/) g[i] = ""
        gpu = gpu sprintf(" gpu%s.util=%s gpu%s.mem=%s gpu%s.memtotal=%s gpu%s.temp=%s gpu%s.power=%s", g[1], g[2], g[1], g[3], g[1], g[4], g[1], g[5], g[1], g[6])
        if (g[7] != "") index_of[toupper(g[7])] = g[1]
      }
      # Each compute process as GPU/PID/USER/MIB/JOB: its user from /proc (a uid where the
      # passwd file does not name it), its fenton job by its process group or session.
      na = split(ENVIRON["FM_APPS"], al, "\n")
      nw = split(ENVIRON["FM_GROUPS"], gw, " ")
      for (j = 1; j <= nw; j++) { c = index(gw[j], ":"); if (c) job_of[substr(gw[j], 1, c - 1)] = substr(gw[j], c + 1) }
      for (j = 1; j <= na; j++) {
        line = al[j]
        gsub(/ /, "", line)
        if (split(line, a, ",") < 3 || a[2] !~ /^[0-9]+$/ || !(toupper(a[1]) in index_of)) continue
        if (a[3] !~ /^[0-9.]+$/) a[3] = ""
        user = ""; job = ""; st = ""
        if ((getline st < ("/proc/" a[2] "/stat")) > 0) {
          rest = st
          while ((c = index(rest, ")")) > 0) rest = substr(rest, c + 1)
          split(rest, f, " ")
          job = (f[3] in job_of) ? job_of[f[3]] : (f[4] in job_of) ? job_of[f[4]] : ""
        }
        close("/proc/" a[2] "/stat")
        while ((getline st < ("/proc/" a[2] "/status")) > 0) if (st ~ /^Uid:/) { split(st, f, " "); user = f[2] }
        close("/proc/" a[2] "/status")
        if (user != "" && !read_passwd) {
          read_passwd = 1
          while ((getline st < "/etc/passwd") > 0) { split(st, f, ":"); if (!(f[3] in name_of)) name_of[f[3]] = f[1] }
          close("/etc/passwd")
        }
        if (user in name_of) user = name_of[user]
        gsub(/[^A-Za-z0-9._-]/, "", user)
        procs = procs (procs == "" ? "" : ",") index_of[toupper(a[1])] "/" a[2] "/" user "/" a[3] "/" job
      }
      if (procs != "") procs = " procs=" procs
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
      printf "%s cpu=%s mem=%s swap=%s load=%s rx=%s tx=%s%s%s jobs=%s%s\n", now, cpu, mem, swap, load, nrx, ntx, d, gpu, ENVIRON["FM_JOBS"], procs
    }' /proc/stat /proc/meminfo /proc/loadavg /proc/net/dev 2>/dev/null)
  prev=${out%%
*}
  start=$((now - now % span))
  if [ "$file" != "$mdir/r-$start" ]; then
    [ -n "$file" ] && [ -f "$file" ] && summarize "$file"
    file=$mdir/r-$start
    prune
  fi
  # A full disk loses samples, not the recorder.
  printf '%s\n' "${out#*
}" >>"$file" 2>/dev/null
  # Each minute that ends, summed up (after its last sample).
  if [ $((now / 60)) != "$minute" ]; then
    minute=$((now / 60))
    summarize "$file" $((now - now % 60))
  fi
  alerts "${out#*
}"
  jobs_2=$jobs_1 jobs_1=$jobs
  sleep "$every" &
  sleeper=$!
  wait "$sleeper"
  sleeper=
done
