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

# The recorder's pid when it runs. (The command line's NUL bytes are dropped by read.)
fm_running() {
  fm_pid=
  [ -r "$fm_mdir/pid" ] && read -r fm_pid <"$fm_mdir/pid"
  case $fm_pid in '' | 0 | 1 | *[!0-9]*) return 1 ;; esac
  kill -0 "$fm_pid" 2>/dev/null || return 1
  if [ -r "/proc/$fm_pid/cmdline" ]; then
    fm_cmd=
    read -r fm_cmd <"/proc/$fm_pid/cmdline"
    case $fm_cmd in *recorder.sh*) ;; *) return 1 ;; esac
  fi
  return 0
}

# The recorder's state, since and settings, read by the shell alone (`status --history`
# waits for every process started here).
fm_state() {
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
  for fm_key in since settings; do
    fm_line=
    [ -r "$fm_mdir/$fm_key" ] && read -r fm_line <"$fm_mdir/$fm_key" && echo "$fm_key $fm_line"
  done
}

# What `monitor status` and `fenton status` show: state, since, settings, files and bytes.
fm_report() {
  fm_state
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
  # shellcheck disable=SC2012 # only fenton's own names, [bcrt]-DIGITS, are counted
  echo "bytes $(ls -ln "$fm_mdir" 2>/dev/null | awk '$NF ~ /^[bcrt]-[0-9]+$/ { s += $5 } END { print s + 0 }')"
  if [ -n "$fm_first" ]; then
    fm_line=
    read -r fm_line <"$fm_first"
    echo "oldest ${fm_line%% *}"
  fi
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
  fm_step=$(((fm_secs + fm_cols - 1) / fm_cols))
  [ "$fm_step" -lt 1 ] && fm_step=1
  fm_n=$fm_cols
  # Buckets of ten minutes or more are whole minutes and end on one: then a bucket's part of
  # a file is the difference of two of the recorder's running sums per minute (c-START), read
  # instead of the samples. Buckets of 100 minutes or more are whole ten minutes, ending on
  # ten: then the sums per ten minutes (b-START) do, which a thinned file keeps. Either way
  # the window grows by less than a tenth.
  fm_unit=1
  if [ "$fm_step" -ge 6000 ]; then
    fm_unit=600
  elif [ "$fm_step" -ge 600 ]; then
    fm_unit=60
  fi
  fm_step=$(((fm_step + fm_unit - 1) / fm_unit * fm_unit))
  fm_state
  # The awk tells the time (no `date` to wait for), so the files and jobs are chosen against
  # the newest file's start, no later than now: fenton keeps only what the window holds.
  fm_files=0 fm_first='' fm_last=0
  for f in "$fm_mdir"/r-* "$fm_mdir"/t-*; do
    [ -f "$f" ] || continue
    fm_start=${f##*/}
    fm_start=${fm_start#?-}
    case $fm_start in '' | *[!0-9]*) continue ;; esac
    fm_files=$((fm_files + 1))
    if [ -z "$fm_first" ] || [ "$fm_start" -lt "${fm_first##*/?-}" ]; then fm_first=$f; fi
    [ "$fm_start" -gt "$fm_last" ] && fm_last=$fm_start
  done
  fm_from=$((fm_last - fm_n * fm_step - fm_unit))
  echo "files $fm_files"
  if [ -n "$fm_first" ]; then
    fm_line=
    read -r fm_line <"$fm_first"
    echo "oldest ${fm_line%% *}"
  fi
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
  # Relative names (r-DIGITS, t-DIGITS): the directory's own path may hold any character.
  # The jobs are read first, as REMOTE_DIR may be relative.
  fm_list='' fm_ls='ls -ln .'
  if cd "$fm_mdir" 2>/dev/null; then
    for f in r-* t-*; do
      [ -f "$f" ] || continue
      fm_start=${f#?-}
      case $fm_start in '' | *[!0-9]*) continue ;; esac
      # A file's span is at most an hour.
      [ $((fm_start + 3600)) -le "$fm_from" ] && continue
      # A finished file (b-) is not read at all, one still growing for its tail only.
      if [ "$fm_unit" = 600 ] && [ -f "b-$fm_start" ]; then
        fm_list="$fm_list b-$fm_start"
      elif [ "$fm_unit" != 1 ] && [ -f "c-$fm_start" ]; then
        fm_list="$fm_list c-$fm_start"
        [ -f "b-$fm_start" ] || fm_list="$fm_list $f"
      else
        fm_list="$fm_list $f"
      fi
    done
  else
    fm_ls='echo total'
  fi
  # The sizes from ls (its first line `total`, so there is one), read by the same awk:
  # fenton's own names only, [bcrt]-DIGITS.
  # Sums per bucket, key by key. A running sums' line (b- and c- files, ` .` at its end when
  # whole) is split only when it is the last of its file in its bucket: the bucket gets its
  # difference from the file's line before, and the file's samples up to it are skipped. A
  # sample is split once (`KEY=VALUE` words, so its pieces alternate) and its bucket's sums are
  # kept apart until the bucket changes; one of another shape (cut short by a full disk) is
  # read word by word.
  # shellcheck disable=SC2012,SC2086 # the list holds only names made of [bcrt0-9-]
  $fm_ls 2>/dev/null | awk -v unit="$fm_unit" -v step="$fm_step" -v n="$fm_n" '
      function flush(   k, j) {
        for (k in c) {
          if (k == "jobs") continue
          if (!(k in id)) { id[k] = ++ids; name[ids] = k }
          used[id[k]] = 1
          j = id[k] * st + cb
          tot[j] += s[k]
          num[j] += c[k]
        }
        split("", s)
        split("", c)
      }
      # The file'\''s running sums at the end of bucket pb (line pl, its keys named in fk),
      # less those before it. Keys are numbered (id, name), for the sums per bucket (tot,
      # num) to be kept by number.
      function settle(   w, m, i, k, v, at, count, total, in_window, j) {
        if (pl == "") return
        m = split(pl, w, " ")
        total = w[2] + 0
        in_window = pb >= 0 && pb < n
        for (i = 3; i < m; i++) {
          if (!(k = fk[i - 2])) continue
          v = w[i]; count = total
          if ((at = index(v, "@"))) { count = substr(v, at + 1) + 0; v = substr(v, 1, at - 1) }
          v += 0
          if (in_window && count > bc[k]) {
            used[k] = 1
            j = k * st + pb
            tot[j] += v - bs[k]
            num[j] += count - bc[k]
          }
          bs[k] = v; bc[k] = count
        }
        pl = ""
      }
      # srand() answers the seed before, which srand() made the time of day.
      BEGIN {
        srand()
        now = srand()
        from = int((now + unit - 1) / unit) * unit - n * step
        print "history " now " " from " " step " " n
        print "now " now
        cb = -1; st = n + 1
      }
      FNR == 1 { file++ }
      file == 1 {
        if ($NF ~ /^[bcrt]-[0-9]+$/) bytes += $5
        next
      }
      FNR == 1 {
        settle(); split("", bs); split("", bc); split("", fk)
        kind = substr(FILENAME, 1, 1)
        start = substr(FILENAME, 3)
        summed = kind == "r" ? ((start in upto) ? upto[start] : -1) : -1
      }
      {
        t = substr($0, 1, index($0, " ") - 1)
        if (t == "keys" && (kind == "b" || kind == "c")) t = 0
        else if (t !~ /^[0-9]+$/ || (t += 0) <= summed) next
      }
      kind == "b" || kind == "c" {
        if (substr($0, 1, 5) == "keys ") {
          settle()
          nk = split($0, w, " ") - 1
          for (i = 1; i <= nk; i++) {
            if (!(w[i + 1] in id)) { id[w[i + 1]] = ++ids; name[ids] = w[i + 1] }
            fk[i] = id[w[i + 1]]
          }
          next
        }
        if (substr($0, length($0) - 1) != " .") next
        upto[start] = t
        b = t <= from ? -1 : int((t - from - 1) / step)
        if (pl != "" && b != pb) settle()
        pl = $0; pb = b
        next
      }
      t <= from || t > from + n * step { next }
      {
        b = int((t - from - 1) / step)
        # The processes on the GPUs in a sample (`procs=GPU/PID/USER/MIB/JOB,...`): when each
        # was first and last seen, its peak memory, its user and its fenton job. The sums
        # hold none, so over hours these come from the samples not yet summed up.
        if ((pi = index($0, " procs="))) {
          pv = substr($0, pi + 7)
          if ((sp = index(pv, " "))) pv = substr(pv, 1, sp - 1)
          np = split(pv, ps, ",")
          for (q = 1; q <= np; q++) {
            if (split(ps[q], f, "/") < 5 || f[1] !~ /^[0-9]+$/ || f[2] !~ /^[0-9]+$/) continue
            p = f[1] " " f[2]
            if (!(p in first)) { first[p] = t; order[++pn] = p }
            last[p] = t
            if (f[3] != "") user[p] = f[3]
            if (f[4] ~ /^[0-9.]+$/ && f[4] + 0 >= peak[p] + 0) peak[p] = f[4]
            if (f[5] != "") job[p] = f[5]
          }
        }
        if (b != cb) { flush(); cb = b }
        m = split($0, w, /[ =]/)
        if (m != 2 * NF - 1) {
          for (i = 2; i <= NF; i++) {
            eq = index($i, "=")
            v = substr($i, eq + 1)
            if (eq > 1 && v != "" && v == v + 0) {
              s[substr($i, 1, eq - 1)] += v
              c[substr($i, 1, eq - 1)]++
            }
          }
        } else {
          for (i = 2; i < m; i += 2) {
            v = w[i + 1]
            if (v == "" || v != v + 0) continue
            s[w[i]] += v
            c[w[i]]++
          }
        }
      }
      END {
        settle()
        flush()
        print "bytes " bytes + 0
        # Each key by its number, whether samples, sums or both had it.
        for (i = 1; i <= ids; i++) {
          if (!(i in used)) continue
          printf "series %s", name[i]
          for (b = 0; b < n; b++) {
            j = i * st + b
            if ((j in num) && num[j] > 0) printf " %.6g", tot[j] / num[j]
            else printf " -"
          }
          printf "\n"
        }
        for (i = 1; i <= pn; i++) {
          p = order[i]
          printf "proc %s %s %s %s %s %s\n", p, first[p], last[p], (p in peak) ? peak[p] : "-", (p in user) ? user[p] : "-", (p in job) ? job[p] : "-"
        }
      }' - $fm_list
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
