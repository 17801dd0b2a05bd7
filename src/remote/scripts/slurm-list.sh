# `fenton jobs [LAST]` on a Slurm profile: the login node's time, then for each of fenton's
# Slurm jobs a block of `KEY VALUE` lines from `job ID` to `end` (its files, and the last
# line of its log), then what the scheduler says about those not known to be over: `squeue
# LINE` (one query, all of the user's jobs, filtered here: squeue's own filters are not
# honoured by every version's --json, and one call costs less than one per job) and, for
# the jobs no longer in the queue or ended in it, `sacct LINE` (one query; `sacct -c`, the
# job completion file, where the cluster keeps no accounting database). A job sacct says is
# over has that line kept in its `final`, so it is not asked about again. With LAST (a
# number above 0), only the LAST latest jobs and those not over come, and `older N` lines
# count the rest. A job may come twice (the later lines are the newer).
fj_last=${1:-0}
case $fj_last in '' | *[!0-9]*) fj_last=0 ;; esac
[ -d "$fj_jobs" ] || { echo "now $(date +%s)"; exit 0; }
# The kept lines hold commands and log lines: as private as the jobs' own files.
umask 077
fj_kept=$fj_jobs/.slurm-listed-ids
# (Every job's kept lines in one file, as fenton kept them once: gone, with the ids that
# named its blocks, so each job's lines are kept again in its own directory.)
[ -f "$fj_jobs/.slurm-listed" ] && rm -f "$fj_jobs/.slurm-listed" "$fj_kept"

# fj_list_one DIR [later]: the job's block; with `later`, a plain job's last log line is
# left to the one tail of every such job below (`lastof ID LINE`).
fj_list_one() {
  echo "job ${1##*/}"
  for fj_f in name cmd started slurm array killed notify notify.last final; do
    if [ -f "$1/$fj_f" ]; then
      fj_read "$1/$fj_f"
      printf '%s %s\n' "$fj_f" "$fj_v"
    fi
  done
  if [ -f "$1/notify.result" ]; then
    while IFS= read -r fj_v; do
      case $fj_v in *[![:space:]]*) printf 'result %s\n' "$fj_v" ;; esac
    done < "$1/notify.result"
  fi
  fj_l=$1/log
  if [ -n "${2-}" ] && [ ! -f "$1/array" ]; then
    echo end
    return 0
  fi
  if [ -f "$1/array" ]; then
    # shellcheck disable=SC2012 # the newest task's log; fenton names them log.N
    fj_l=$(ls -t "$1"/log.* 2>/dev/null | head -n 1)
  fi
  # (A job that has not started has written nothing: no programs for it.)
  if [ -s "$fj_l" ]; then
    tail -c 4096 "$fj_l" 2>/dev/null | awk '
      { n = split($0, parts, "\r"); for (i = 1; i <= n; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i] }
      END { print "last " last }'
  else
    echo 'last '
  fi
  echo end
}

# fj_squeue: the queue's lines for all of the user's jobs, then `fj-rc STATUS`.
# JOBID|ARRAYJOBID|TASK|STATE|REASON|ELAPSED|LIMIT|LEFT|NODES|START
# (--me, and the user's name where a Slurm older than 20.11 has no --me.)
fj_squeue() {
  fj_f='%A|%F|%K|%T|%r|%M|%l|%L|%N|%S'
  fj_q=$(squeue -h -t all --me -o "$fj_f" 2>&1)
  fj_rc=$?
  case $fj_q in
    *'unrecognized option'* | *'invalid option'*)
      fj_q=$(squeue -h -t all -u "$(id -un)" -o "$fj_f" 2>&1)
      fj_rc=$?
      ;;
  esac
  printf '%s\nfj-rc %s\n' "$fj_q" "$fj_rc"
}

# fj_queue: fj_squeue's answer (on stdin) read for the jobs in fj_ids: `squeue LINE` for
# fenton's jobs (on stderr), and the ids to ask sacct about (on stdout, comma-separated).
fj_queue() {
  FJ_IDS=$fj_ids awk -F'|' '
    BEGIN {
      n = split(ENVIRON["FJ_IDS"], list, "\n")
      for (i = 1; i <= n; i++) { split(list[i], w, " "); if (w[1] != "" && w[2] != "-") want[w[1]] = 1 }
    }
    /^fj-rc / { rc = substr($0, 7) + 0; next }
    { line[++nl] = $0 }
    END {
      if (rc != 0) {
        why = ""
        for (i = 1; i <= nl && why == ""; i++) if (line[i] ~ /[^[:space:]]/) why = line[i]
        print "squeue-failed " why > "/dev/stderr"
        nl = 0
      }
      for (i = 1; i <= nl; i++) {
        split(line[i], f, "|")
        if (!(f[2] in want) && !(f[1] in want)) continue
        print "squeue " line[i] > "/dev/stderr"
        seen[f[2]] = 1; seen[f[1]] = 1
        if (f[4] !~ /^(PENDING|RUNNING|COMPLETING|CONFIGURING|SUSPENDED|REQUEUED|REQUEUE_.*|RESIZING|SIGNALING|STAGE_OUT|STOPPED)$/) printf "%s,", f[1]
      }
      for (id in want) if (!(id in seen)) printf "%s,", id
    }'
}

# fj_rest: the listing; when fj_early is set, fj_squeue's answer comes on stdin, asked for at
# the start (.slurm-active says a job was not over when last seen: the query then runs while
# the jobs' files are read, not after).
fj_rest() {
  # As list.sh does: fj_kept_listing prints the box's time and the kept lines of the jobs
  # over (their end kept in `final`, their message sent: they cannot change; ids in
  # .slurm-listed-ids), and names the others on stderr for the loop below, which prints
  # their lines on fd 4 and, for each not over, `SLURMID KIND NAME` on stdout (KIND 1 for
  # an array job, 0 for a plain one, - for one whose end is known, waiting for its message
  # only: the scheduler is not asked about it).
  exec 4>&1
  fj_ids=$(
    fj_kept_listing "$fj_kept" "$fj_last" 2>&1 >&4 |
      while IFS= read -r fj_n; do
        # (todo-older: one past the LAST latest, shown only if it is not over.)
        case $fj_n in
          "todo "*) fj_n=${fj_n#todo } fj_older='' ;;
          "todo-older "*) fj_n=${fj_n#todo-older } fj_older=1 ;;
          *)
            printf '%s\n' "$fj_n" >&2
            continue
            ;;
        esac
        fj_d=$fj_jobs/$fj_n
        [ -f "$fj_d/slurm" ] || continue
        if [ -f "$fj_d/final" ] && [ ! -d "$fj_d/notify.d" ]; then
          fj_block=$(fj_list_one "$fj_d")
          if [ -n "$fj_older" ]; then echo "older 1" >&4; else printf '%s\n' "$fj_block" >&4; fi
          printf '%s\n' "$fj_block" > "$fj_d/listed" 2>/dev/null && printf '%s\n' "$fj_n" >> "$fj_kept" 2>/dev/null
        else
          fj_list_one "$fj_d" later >&4
          fj_read "$fj_d/slurm"
          fj_a=0
          if [ -f "$fj_d/array" ]; then fj_a=1; fi
          if [ -f "$fj_d/final" ]; then fj_a=-; fi
          printf '%s %s %s\n' "$fj_v" "$fj_a" "$fj_n"
        fi
      done
  )
  # The last line of each plain job's log, with one tail for all. Its `==> PATH <==` header
  # lines are taken only for the paths given and in their order, each the last such line
  # before the next one's: a log that holds such a line itself (a job tailing the others'
  # logs) does not move the next log's start.
  set --
  fj_tailed=''
  while IFS=' ' read -r fj_s fj_a fj_n; do
    if [ "$fj_a" != 1 ] && [ -s "$fj_jobs/$fj_n/log" ]; then
      set -- "$@" "$fj_jobs/$fj_n/log"
      fj_tailed="$fj_tailed$fj_n
"
    fi
  done <<EOF
$fj_ids
EOF
  if [ "$#" -gt 0 ]; then
    tail -c 4096 -- "$@" 2>/dev/null | FJ_TAILED=$fj_tailed FJ_JOBS=$fj_jobs awk '
      { line[++n] = $0 }
      END {
        m = split(ENVIRON["FJ_TAILED"], id, "\n") - 1
        at[m + 1] = n + 1
        for (k = m; k >= 1; k--) {
          at[k] = (m == 1) ? 0 : at[k + 1]
          head = "==> " ENVIRON["FJ_JOBS"] "/" id[k] "/log <=="
          for (j = at[k + 1] - 1; m > 1 && j >= 1; j--) if (line[j] == head) { at[k] = j; break }
        }
        for (k = 1; k <= m; k++) {
          last = ""
          for (j = at[k] + 1; j < at[k + 1]; j++) {
            c = split(line[j], parts, "\r")
            for (i = 1; i <= c; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i]
          }
          print "lastof " id[k] " " last
        }
      }'
  fi
  case $fj_ids in
    *' 0 '* | *' 1 '*) ;;
    *)
      # None to ask about: the next listing need not ask at its start.
      if [ -f "$fj_active" ]; then rm -f "$fj_active"; fi
      exit 0
      ;;
  esac
  [ -n "$fj_early" ] || : > "$fj_active" 2>/dev/null
  # One awk: the queue's lines for fenton's jobs (on fd 4), and the jobs to ask sacct about,
  # for their exit codes (on stdout): those no longer in the queue, and the tasks that ended
  # in it (by their own ids: `sacct -c` knows array tasks by no other). When squeue failed,
  # `squeue-failed` and its first word on why: then nobody knows how the jobs still in the
  # queue stand, and fenton says so rather than guess.
  fj_ask=$(
    if [ -n "$fj_early" ]; then fj_queue; else fj_squeue | fj_queue; fi 2>&4
  )
  exec 4>&-
  fj_ask=${fj_ask%,}
  [ -n "$fj_ask" ] || exit 0
  # (No JobName: a name is the user's text, and the lines are read by their fields.)
  fj_fmt=JobID,State,ExitCode,Elapsed,Start,End,NodeList
  if ! fj_a=$(sacct -X -P -n -j "$fj_ask" -o "$fj_fmt" 2>&1) ||
    case $fj_a in *'accounting storage is disabled'*) true ;; *) false ;; esac; then
    fj_a=$(sacct -c -P -n -j "$fj_ask" -o "$fj_fmt" 2>/dev/null)
  fi
  # A job's line starts with its id; anything else is sacct's own word (`sacct: error: ...`).
  # A plain job (not an array: its tasks come under ids of their own) that is over gets its
  # line kept in its `final`, once every line is printed (a write that fails loses none).
  # PREEMPTED may be requeued, so it is not kept.
  printf '%s\n' "$fj_a" | FJ_IDS=$fj_ids FJ_JOBS=$fj_jobs awk -F'|' '
    BEGIN {
      n = split(ENVIRON["FJ_IDS"], list, "\n")
      for (i = 1; i <= n; i++) {
        line = list[i]; sid = line; sub(/ .*/, "", sid); sub(/^[^ ]* /, "", line)
        kind = line; sub(/ .*/, "", kind); sub(/^[^ ]* /, "", line)
        if (sid != "" && kind == "0") dir[sid] = line
      }
    }
    !/^[0-9]/ { next }
    {
      print "sacct " $0
      state = $2; sub(/ .*/, "", state)
      if (($1 in dir) && state !~ /^(PENDING|RUNNING|COMPLETING|CONFIGURING|SUSPENDED|REQUEUED|REQUEUE_.*|RESIZING|SIGNALING|STAGE_OUT|STOPPED|UNREACHABLE|PREEMPTED)$/)
        final[$1] = $0
    }
    END {
      fflush()
      for (sid in final) {
        f = ENVIRON["FJ_JOBS"] "/" dir[sid] "/final"
        print final[sid] > f
        close(f)
      }
    }' 2>/dev/null
}

fj_active=$fj_jobs/.slurm-active
if [ -f "$fj_active" ]; then
  fj_early=1
  fj_squeue | fj_rest
else
  fj_early=''
  fj_rest < /dev/null
fi
:
