# The watcher fenton keeps on a Slurm cluster's login node (compute nodes often have no way
# out), started by `fenton run --notify` when none runs: `sh JOBS/.watch.sh ROOT EVERY`
# (ROOT is remote_dir, JOBS its jobs directory, as lib.sh, which comes first, has it). Every
# EVERY seconds it asks the scheduler once about all of the user's jobs (`squeue`), and only
# when one of the jobs it watches has left the queue without a word on how it ended, once
# more (`sacct`, or `sacct -c` without an accounting database) for all of those together;
# never a query per job. For each watched job that ended (its directory has notify.d) it
# sends the end message on the job's channels, records the results, and removes notify.d
# (the secrets). It ends when no job is left to watch. Each query it makes is a line of
# JOBS/.watch.log (`TIME squeue|sacct`), so its cost can be counted. The functions it sends
# with come first (job.sh's).
umask 077
fj_every=$1
# Paths may hold spaces: lists here are a line each, never globbed.
set -f
IFS='
'
fj_pidf=$fj_jobs/.watch.pid
fj_qlog=$fj_jobs/.watch.log
fj_host=$(fj_hostname)
fj_user=$(id -un)
echo $$ > "$fj_pidf"

# The directories of the jobs to watch, a line each.
fj_watched() {
  set +f
  for fj_d in "$fj_jobs"/*/; do
    [ -d "${fj_d}notify.d" ] && [ -f "${fj_d}slurm" ] && printf '%s\n' "${fj_d%/}"
  done
  set -f
}

fj_query() {
  echo "$(date +%s) $1" >> "$fj_qlog"
}

# fj_final STATE: whether a Slurm state is an end.
fj_final() {
  case $1 in
    COMPLETED | FAILED | CANCELLED* | TIMEOUT | OUT_OF_ME* | NODE_FAIL | BOOT_FAIL | DEADLINE | PREEMPTED | SPECIAL_EXIT | REVOKED) return 0 ;;
  esac
  return 1
}

# fj_killed DIR: when fenton's kill of the job in DIR began (fj_k): empty when it was not
# killed, 0 when the kill could not write the time.
fj_killed() {
  fj_k=
  [ -f "$1/killed" ] || return 0
  fj_read "$1/killed"
  fj_k=$fj_v
  case $fj_k in '' | *[!0-9]*) fj_k=0 ;; esac
}

# fj_ended DIR STATE CODE SECS NODE [TASK TASKS]: the end message for the job in DIR, then
# its results kept and its secrets removed. CODE is Slurm's N:S; fj_at is when it ended, as
# the accounting says (empty when it did not). For an array job, STATE and CODE are those of
# task TASK, whose log is shown, and TASKS says how all of them ended.
fj_ended() {
  fj_job=$1 fj_n=$1/notify.d
  fj_id=${1##*/}
  fj_read "$1/name"
  fj_name=$fj_v
  fj_read "$1/slurm"
  fj_sid=$fj_v
  fj_e=${3%%:*} fj_sg=${3#*:}
  case $fj_e in '' | *[!0-9]*) fj_e=0 ;; esac
  case $fj_sg in '' | *[!0-9]*) fj_sg=0 ;; esac
  if [ "$fj_sg" -gt 0 ]; then fj_e=$((128 + fj_sg)); fi
  case $2 in
    COMPLETED) fj_state=succeeded fj_what=succeeded ;;
    FAILED | SPECIAL_EXIT) fj_state=failed fj_what="failed (exit $fj_e)" ;;
    CANCELLED* | REVOKED) fj_state=cancelled fj_what="was cancelled" ;;
    TIMEOUT | DEADLINE) fj_state=timeout fj_what="reached its time limit" ;;
    OUT_OF_ME*) fj_state=out_of_memory fj_what="ran out of memory" ;;
    NODE_FAIL | BOOT_FAIL) fj_state=node_failure fj_what="ended with its node failing" ;;
    PREEMPTED) fj_state=preempted fj_what="was preempted" ;;
    UNKNOWN) fj_state=unknown fj_what="ended, but neither squeue nor sacct says how" ;;
    *) fj_state=unknown fj_what="ended (Slurm says $(fj_shown "$2"))" ;;
  esac
  # A job fenton stopped was cancelled, even when its TERM handler then exited by itself or
  # it died of the signal; one that ended before the kill keeps its own end. An array fenton
  # stopped was cancelled, even where one of its tasks had failed before.
  fj_killed "$1"
  if [ -n "$fj_k" ] && { [ "$fj_state" = succeeded ] || [ "$fj_state" = failed ]; } &&
    { [ -n "${6:-}" ] || [ -z "${fj_at:-}" ] || [ "$fj_at" -ge "$fj_k" ]; }; then
    fj_state=cancelled fj_what="was cancelled"
  fi
  fj_secs=$4
  case $fj_secs in '' | *[!0-9]*) fj_secs=0 ;; esac
  # A job shorter than notify.d/min sends no end message (as on a box).
  fj_min=$(fj_num min)
  if [ "$fj_secs" -lt "$fj_min" ]; then
    fj_results="not sent: it ran $(fj_human "$fj_secs"), under the $(fj_human "$fj_min") minimum"
    printf '%s\n' "$fj_results" > "$1/notify.result"
    fj_last skipped
    rm -rf "$fj_n"
    return 0
  fi
  fj_log=$1/log fj_whose=the
  if [ -n "${6:-}" ]; then
    fj_log=$1/log.$6 fj_whose="task $6's"
    case $fj_state in succeeded | cancelled) ;; *) fj_what="$fj_what: task $6" ;; esac
  fi
  fj_title="$fj_name $fj_what on $fj_host"
  fj_tail=$(fj_tail 10 "$fj_log")
  fj_text=$(
    echo "$fj_title"
    echo "job $fj_id (Slurm job $fj_sid${6:+, task $6}${5:+ on $5}), exit status $fj_e, ran $(fj_human "$fj_secs") ($fj_secs s)"
    [ -z "${7:-}" ] || printf '%s\n' "$7"
    if [ -n "$fj_tail" ]; then
      echo "last lines of $fj_whose log:"
      printf '%s\n' "$fj_tail"
    else
      echo "$fj_whose log is empty"
    fi
  )
  fj_notify "$fj_title" "$fj_text" "$fj_state" "$fj_e" "$fj_secs" "$fj_tail" false
  printf '%s\n' "$fj_results" > "$1/notify.result"
  fj_last end
  rm -rf "$fj_n"
}

# fj_array_ended DIR TASKS: the end message for the array job in DIR, all of whose tasks
# have ended; TASKS has a line a task, `TASK|STATE|N:S|SECONDS|NODE|END` (END empty where
# the accounting was not asked). The task shown is the first failure (by index), else the
# first that did not succeed, else the last. A task that ended after fenton's kill began
# was cancelled, as fj_ended has it.
fj_array_ended() {
  fj_killed "$1"
  fj_pick=$(printf '%s\n' "$2" | awk -F'|' -v OFS='|' -v killed="$fj_k" '
    function code(c,  n, s) {
      n = c; s = c; sub(/:.*/, "", n)
      if (s ~ /:/) sub(/^[^:]*:/, "", s); else s = 0
      return s + 0 > 0 ? 128 + s : n + 0
    }
    function word(st, c) {
      if (st == "COMPLETED") return c == 0 ? "succeeded" : "failed"
      if (st == "FAILED" || st == "SPECIAL_EXIT") return "failed"
      if (st ~ /^CANCELLED/ || st == "REVOKED") return "cancelled"
      if (st == "TIMEOUT" || st == "DEADLINE") return "timed out"
      if (st ~ /^OUT_OF_ME/) return "out of memory"
      if (st == "NODE_FAIL" || st == "BOOT_FAIL") return "node failure"
      if (st == "PREEMPTED") return "preempted"
      return "unknown"
    }
    $1 == "" { next }
    {
      n++; c = code($3); w = word($2, c)
      if (killed != "" && (w == "succeeded" || w == "failed") && ($6 == "" || $6 + 0 >= killed + 0)) {
        w = "cancelled"; $2 = "CANCELLED"; $3 = "0:0"; c = 0
      }
      count[w]++
      if (w != "succeeded") {
        what = w == "failed" ? "task " $1 ": exit " (c == 0 ? 1 : c) : "task " $1
        if (listed[w] < 5) list[w] = list[w] (listed[w] ? ", " : "") what
        else if (listed[w] == 5) list[w] = list[w] ", ..."
        listed[w]++
      }
      rank = w == "failed" ? 0 : w == "succeeded" ? 2 : 1
      if (pick == "" || rank < best || (rank == best && (rank < 2 ? $1 + 0 < at + 0 : $1 + 0 > at + 0))) {
        pick = $0; best = rank; at = $1
      }
      if ($4 + 0 > secs) secs = $4 + 0
    }
    END {
      print pick
      print secs + 0
      s = n " tasks: "; k = 0
      split("succeeded,failed,cancelled,timed out,out of memory,node failure,preempted,unknown", order, ",")
      for (i = 1; i <= 8; i++) {
        w = order[i]
        if (!(w in count)) continue
        s = s (k++ ? ", " : "") count[w] " " w
        if (w in list) s = s " (" list[w] ")"
      }
      print s
    }')
  fj_p=$(printf '%s\n' "$fj_pick" | sed -n 1p)
  fj_at=
  fj_ended "$1" "$(printf '%s' "$fj_p" | cut -d'|' -f2)" "$(printf '%s' "$fj_p" | cut -d'|' -f3)" \
    "$(printf '%s\n' "$fj_pick" | sed -n 2p)" "$(printf '%s' "$fj_p" | cut -d'|' -f5)" \
    "$(printf '%s' "$fj_p" | cut -d'|' -f1)" "$(printf '%s\n' "$fj_pick" | sed -n 3p)"
}

# Slurm's [D-]HH:MM:SS, MM:SS in seconds.
fj_secs() {
  printf '%s\n' "$1" | awk -F'[-:]' '
    { s = 0; n = NF; if ($0 ~ /-/) { s = $1 * 86400; for (i = 2; i <= n; i++) f[i - 1] = $i; n-- } else for (i = 1; i <= n; i++) f[i] = $i
      if (n == 3) s += f[1] * 3600 + f[2] * 60 + f[3]; else if (n == 2) s += f[1] * 60 + f[2]; else s += f[1] * 60
      print s }'
}

fj_round() {
  fj_list=$(fj_watched)
  if [ -z "$fj_list" ]; then
    # A job added while this one was leaving is still seen: look again once it is gone.
    rm -f "$fj_pidf"
    fj_list=$(fj_watched)
    [ -n "$fj_list" ] || exit 0
    echo $$ > "$fj_pidf"
  fi
  fj_query squeue
  # JOBID|ARRAYJOBID|STATE|ELAPSED|NODES|TASK
  fj_q=$(squeue -h -t all -u "$fj_user" -o '%A|%F|%T|%M|%N|%K' 2>/dev/null) || return 0
  fj_ask=
  for fj_d in $fj_list; do
    fj_read "$fj_d/slurm"
    fj_sid=$fj_v
    # The job's lines: its own, or its array's tasks.
    fj_lines=$(printf '%s\n' "$fj_q" | awk -F'|' -v id="$fj_sid" '$2 == id')
    if [ -z "$fj_lines" ]; then
      fj_ask="$fj_ask$fj_sid,"
      continue
    fi
    fj_busy=$(printf '%s\n' "$fj_lines" | awk -F'|' '
      $3 !~ /^(COMPLETED|FAILED|CANCELLED.*|TIMEOUT|OUT_OF_ME.*|NODE_FAIL|BOOT_FAIL|DEADLINE|PREEMPTED|SPECIAL_EXIT|REVOKED)$/ { n++ }
      END { print n + 0 }')
    [ "$fj_busy" = 0 ] || continue
    if [ -f "$fj_d/array" ]; then
      # TASK|STATE|N:S|SECONDS|NODE|JOBID, a line a task: the exit codes of those that did
      # not complete are the accounting's, asked about by the tasks' own ids.
      printf '%s\n' "$fj_lines" | awk -F'|' '
        { n = split($4, t, /[-:]/); s = 0
          if ($4 ~ /-/) s = t[1] * 86400
          if (n - ($4 ~ /-/) == 3) s += t[n - 2] * 3600 + t[n - 1] * 60 + t[n]; else if (n - ($4 ~ /-/) == 2) s += t[n - 1] * 60 + t[n]
          gsub(/[^A-Za-z0-9.,\[\]-]/, "", $5)
          print $6 "|" $3 "|0:0|" s "|" $5 "|" $1 }' OFS='|' > "$fj_d/notify.d/tasks"
      fj_bad=$(awk -F'|' '$2 != "COMPLETED" { printf "%s,", $6 }' "$fj_d/notify.d/tasks")
      if [ -n "$fj_bad" ]; then
        fj_ask="$fj_ask$fj_bad"
      else
        fj_array_ended "$fj_d" "$(awk -F'|' '{ print $1 "|" $2 "|" $3 "|" $4 "|" $5 "|" }' "$fj_d/notify.d/tasks")"
      fi
      continue
    fi
    fj_n_lines=$(printf '%s\n' "$fj_lines" | wc -l)
    fj_first=$(printf '%s\n' "$fj_lines" | awk -F'|' '$3 != "COMPLETED" { print; exit } END { }')
    [ -n "$fj_first" ] || fj_first=$(printf '%s\n' "$fj_lines" | head -n 1)
    fj_s=$(printf '%s' "$fj_first" | cut -d'|' -f3)
    fj_el=$(fj_secs "$(printf '%s' "$fj_first" | cut -d'|' -f4)")
    fj_node=$(printf '%s' "$fj_first" | cut -d'|' -f5 | LC_ALL=C tr -cd 'A-Za-z0-9.,[]-')
    if [ "$fj_s" = FAILED ] && [ "$fj_n_lines" = 1 ]; then
      # The exit code is the accounting's.
      fj_ask="$fj_ask$fj_sid,"
      continue
    fi
    fj_at=
    fj_ended "$fj_d" "$fj_s" 0:0 "$fj_el" "$fj_node"
  done
  fj_ask=${fj_ask%,}
  [ -n "$fj_ask" ] || return 0
  fj_fmt=JobID,State,ExitCode,Elapsed,NodeList,End
  fj_query sacct
  if ! fj_a=$(sacct -X -P -n -j "$fj_ask" -o "$fj_fmt" 2>&1) ||
    printf '%s' "$fj_a" | grep -q 'accounting storage is disabled'; then
    fj_query sacct
    fj_a=$(sacct -c -P -n -j "$fj_ask" -o "$fj_fmt" 2>/dev/null)
  fi
  for fj_d in $fj_list; do
    [ -d "$fj_d/notify.d" ] || continue
    fj_read "$fj_d/slurm"
    if [ -f "$fj_d/notify.d/tasks" ]; then
      # Each task as the accounting has it (by its own id, or ARRAY_TASK with a database);
      # one it has no line for yet is waited for, ten looks at most.
      fj_t=$(printf '%s\n' "$fj_a" | awk -F'|' -v id="$fj_v" -v tasks="$fj_d/notify.d/tasks" '
        { st = $2; sub(/ .*/, "", st); book[$1] = st "|" $3 "|" $6 }
        END {
          while ((getline line < tasks) > 0) {
            split(line, f, "|")
            if (f[6] in book) b = book[f[6]]; else if ((id "_" f[1]) in book) b = book[id "_" f[1]]
            else if (f[2] == "COMPLETED") b = "COMPLETED|0:0|"; else { b = f[2] "|0:0|"; missing = 1 }
            split(b, g, "|")
            print f[1] "|" g[1] "|" g[2] "|" f[4] "|" f[5] "|" g[3]
          }
          if (missing) print "missing"
        }')
      case $fj_t in
        *missing)
          fj_m=$(cat "$fj_d/notify.d/misses" 2>/dev/null || echo 0)
          case $fj_m in '' | *[!0-9]*) fj_m=0 ;; esac
          fj_m=$((fj_m + 1))
          echo "$fj_m" > "$fj_d/notify.d/misses"
          [ "$fj_m" -ge 10 ] || continue
          ;;
      esac
      fj_array_ended "$fj_d" "$(printf '%s\n' "$fj_t" | grep -v '^missing$')"
      continue
    fi
    fj_line=$(printf '%s\n' "$fj_a" | awk -F'|' -v id="$fj_v" '$1 == id' | tail -n 1)
    if [ -z "$fj_line" ]; then
      # Known to neither the queue nor the accounting (a job from before a restart of an
      # accounting-less cluster): after ten looks, say so rather than watch for ever.
      fj_m=$(cat "$fj_d/notify.d/misses" 2>/dev/null || echo 0)
      case $fj_m in '' | *[!0-9]*) fj_m=0 ;; esac
      fj_m=$((fj_m + 1))
      echo "$fj_m" > "$fj_d/notify.d/misses"
      fj_at=
      [ "$fj_m" -ge 10 ] && fj_ended "$fj_d" UNKNOWN 0:0 0 ""
      continue
    fi
    fj_s=$(printf '%s' "$fj_line" | cut -d'|' -f2)
    fj_s=${fj_s%% *}
    fj_final "$fj_s" || continue
    fj_at=$(printf '%s' "$fj_line" | cut -d'|' -f6)
    case $fj_at in *[!0-9]*) fj_at= ;; esac
    fj_ended "$fj_d" "$fj_s" "$(printf '%s' "$fj_line" | cut -d'|' -f3)" \
      "$(fj_secs "$(printf '%s' "$fj_line" | cut -d'|' -f4)")" \
      "$(printf '%s' "$fj_line" | cut -d'|' -f5 | LC_ALL=C tr -cd 'A-Za-z0-9.,[]-')"
  done
}

while :; do
  fj_round
  fj_nap "$fj_every"
done
