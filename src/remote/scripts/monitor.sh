# fenton monitor: start, find, stop and read the recorder (recorder.sh) in REMOTE_DIR/monitor.
# Answers `key value` lines that fenton parses (src/monitor.rs).
#
# Usage: sh -s -- start   REMOTE_DIR EVERY KEEP   (recorder.sh.new written there first)
#        sh -s -- stop    REMOTE_DIR
#        sh -s -- status  REMOTE_DIR
#        sh -s -- history REMOTE_DIR SECONDS COLUMNS
#
# The recorder runs while REMOTE_DIR/monitor/pid names a live process running recorder.sh. A
# pid file whose process is gone means it did not stop through fenton: the box rebooted
# (boot_id changed) or it was killed.
fm_mode=$1 fm_rdir=$2
fm_mdir=$fm_rdir/monitor
LC_ALL=C
export LC_ALL

# The recorder's pid when it runs.
fm_running() {
  fm_pid=
  [ -r "$fm_mdir/pid" ] && read -r fm_pid <"$fm_mdir/pid"
  case $fm_pid in '' | 0 | 1 | *[!0-9]*) return 1 ;; esac
  kill -0 "$fm_pid" 2>/dev/null || return 1
  [ -r "/proc/$fm_pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$fm_pid/cmdline" | grep -q 'recorder\.sh' && return 1
  return 0
}

# What `monitor status` and `fenton status` show: state, since, settings, files and bytes.
fm_report() {
  if fm_running; then
    echo "state running"
    echo "pid $fm_pid"
  elif [ -f "$fm_mdir/pid" ]; then
    fm_boot='' fm_now_boot=''
    [ -r "$fm_mdir/boot" ] && read -r fm_boot <"$fm_mdir/boot"
    [ -r /proc/sys/kernel/random/boot_id ] && read -r fm_now_boot </proc/sys/kernel/random/boot_id
    if [ -n "$fm_boot" ] && [ "$fm_boot" != "$fm_now_boot" ]; then
      echo "state rebooted"
    else
      echo "state died"
    fi
  else
    echo "state stopped"
  fi
  [ -r "$fm_mdir/since" ] && echo "since $(cat "$fm_mdir/since")"
  [ -r "$fm_mdir/settings" ] && echo "settings $(cat "$fm_mdir/settings")"
  # Sizes from the directory, the oldest sample from the oldest file's first line: a full
  # ring is megabytes, not worth reading for this.
  fm_files=0 fm_first=''
  for f in "$fm_mdir"/r-* "$fm_mdir"/t-*; do
    [ -f "$f" ] || continue
    fm_files=$((fm_files + 1))
    fm_s=${f##*/}
    fm_s=${fm_s#?-}
    case $fm_s in '' | *[!0-9]*) continue ;; esac
    if [ -z "$fm_first" ] || [ "$fm_s" -lt "${fm_first##*-}" ]; then fm_first=$f; fi
  done
  echo "files $fm_files"
  # shellcheck disable=SC2012 # only fenton's own names, [rt]-DIGITS, are counted
  echo "bytes $(ls -ln "$fm_mdir" 2>/dev/null | awk '$NF ~ /^[rt]-[0-9]+$/ { s += $5 } END { print s + 0 }')"
  [ -n "$fm_first" ] && echo "oldest $(head -n 1 "$fm_first" | awk '{ print $1 }')"
  echo "now $(date +%s)"
}

fm_start() {
  fm_every=$1 fm_keep=$2
  if fm_running; then
    rm -f "$fm_mdir/recorder.sh.new"
    echo "already $fm_pid"
    fm_report
    return 0
  fi
  mv -f "$fm_mdir/recorder.sh.new" "$fm_mdir/recorder.sh" || {
    echo "fenton: cannot write $fm_mdir on the box (is the disk full?)" >&2
    exit 1
  }
  rm -f "$fm_mdir/pid"
  # A session of its own: a logout, a closed ssh channel or a killed master never reaches it.
  if command -v setsid >/dev/null 2>&1; then
    (cd "$fm_mdir" && exec setsid sh "$fm_mdir/recorder.sh" "$fm_every" "$fm_keep" "$fm_rdir") \
      </dev/null >/dev/null 2>"$fm_mdir/recorder.err" &
  else
    (cd "$fm_mdir" && trap '' HUP && exec sh "$fm_mdir/recorder.sh" "$fm_every" "$fm_keep" "$fm_rdir") \
      </dev/null >/dev/null 2>"$fm_mdir/recorder.err" &
  fi
  fm_t=100
  while ! fm_running; do
    fm_t=$((fm_t - 1))
    if [ "$fm_t" -lt 0 ]; then
      echo "fenton: the recorder did not start within 10 s: $(tail -n 1 "$fm_mdir/recorder.err" 2>/dev/null)" >&2
      exit 1
    fi
    sleep 0.1 2>/dev/null || sleep 1
  done
  echo "started $fm_pid"
  fm_report
}

fm_stop() {
  # The channels' files hold tokens: they stay only while a recorder may send.
  rm -rf "$fm_mdir/notify.d"
  if ! fm_running; then
    rm -f "$fm_mdir/pid"
    echo "state stopped"
    return 0
  fi
  kill -TERM "$fm_pid" 2>/dev/null
  fm_t=100
  while kill -0 "$fm_pid" 2>/dev/null; do
    fm_t=$((fm_t - 1))
    if [ "$fm_t" -lt 0 ]; then
      kill -KILL "$fm_pid" 2>/dev/null
      break
    fi
    sleep 0.1 2>/dev/null || sleep 1
  done
  rm -f "$fm_mdir/pid"
  echo "stopped $fm_pid"
}

# The samples of the last SECONDS averaged into COLUMNS buckets of STEP whole seconds (the
# window grows to COLUMNS × STEP, so the chart fills its width): `series KEY V…` with `-` for
# a bucket without samples; the GPUs' compute processes seen then, `proc GPU PID FIRST LAST
# PEAK_MIB USER JOB` (`-` for what is not known); and the fenton jobs that ran then.
fm_history() {
  fm_secs=$1 fm_cols=$2
  fm_now=$(date +%s)
  fm_step=$(((fm_secs + fm_cols - 1) / fm_cols))
  [ "$fm_step" -lt 1 ] && fm_step=1
  fm_n=$fm_cols
  fm_from=$((fm_now - fm_n * fm_step))
  echo "history $fm_now $fm_from $fm_step $fm_n"
  fm_report
  # Relative names (r-DIGITS, t-DIGITS): the directory's own path may hold any character.
  # In a subshell: the cd must not move the jobs lookup below (REMOTE_DIR may be relative).
  (
  fm_list=
  if cd "$fm_mdir" 2>/dev/null; then
    for f in r-* t-*; do
      [ -f "$f" ] || continue
      fm_start=${f#?-}
      case $fm_start in '' | *[!0-9]*) continue ;; esac
      # A file's span is at most an hour.
      [ $((fm_start + 3600)) -le "$fm_from" ] && continue
      fm_list="$fm_list $f"
    done
  fi
  if [ -n "$fm_list" ]; then
    # shellcheck disable=SC2086 # the list holds only names made of [rt0-9-]
    awk -v from="$fm_from" -v step="$fm_step" -v n="$fm_n" '
      $1 !~ /^[0-9]+$/ || $1 <= from || $1 > from + n * step { next }
      {
        b = int(($1 - from - 1) / step)
        for (i = 2; i <= NF; i++) {
          eq = index($i, "=")
          if (eq < 2) continue
          k = substr($i, 1, eq - 1)
          v = substr($i, eq + 1)
          if (k == "procs") {
            np = split(v, ps, ",")
            for (q = 1; q <= np; q++) {
              if (split(ps[q], f, "/") < 5 || f[1] !~ /^[0-9]+$/ || f[2] !~ /^[0-9]+$/) continue
              p = f[1] " " f[2]
              if (!(p in first)) { first[p] = $1; order[++pn] = p }
              last[p] = $1
              if (f[3] != "") user[p] = f[3]
              if (f[4] ~ /^[0-9.]+$/ && f[4] + 0 >= peak[p] + 0) peak[p] = f[4]
              if (f[5] != "") job[p] = f[5]
            }
            continue
          }
          if (k == "jobs" || v !~ /^-?[0-9.]+$/) continue
          keys[k] = 1
          sum[k, b] += v
          cnt[k, b]++
        }
      }
      END {
        for (k in keys) {
          line = "series " k
          for (b = 0; b < n; b++) line = line ((k, b) in cnt ? " " sprintf("%.6g", sum[k, b] / cnt[k, b]) : " -")
          print line
        }
        for (i = 1; i <= pn; i++) {
          p = order[i]
          printf "proc %s %s %s %s %s %s\n", p, first[p], last[p], (p in peak) ? peak[p] : "-", (p in user) ? user[p] : "-", (p in job) ? job[p] : "-"
        }
      }' $fm_list
  fi
  )
  [ -d "$fm_rdir/jobs" ] || return 0
  for j in "$fm_rdir"/jobs/*/; do
    [ -f "${j}started" ] || continue
    started='' ended='' name=''
    read -r started <"${j}started"
    [ -r "${j}ended" ] && read -r ended <"${j}ended"
    [ -r "${j}name" ] && read -r name <"${j}name"
    case $started in '' | *[!0-9]*) continue ;; esac
    case $ended in *[!0-9]*) ended= ;; esac
    [ -n "$ended" ] && [ "$ended" -lt "$fm_from" ] && continue
    id=${j%/}
    printf 'job %s %s %s %s\n' "${id##*/}" "$started" "${ended:--}" "$name"
  done
}

case $fm_mode in
  start) fm_start "$3" "$4" ;;
  stop) fm_stop ;;
  status) fm_report ;;
  history) fm_history "$3" "$4" ;;
  *)
    echo "fenton: unknown monitor mode $fm_mode" >&2
    exit 2
    ;;
esac
