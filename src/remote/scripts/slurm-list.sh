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

# As list.sh does: one awk does the listing's fixed part, so a long history costs no look
# into old jobs' files but one each, and one program. A job that is over (its end kept in
# `final`, its message sent) cannot change: its lines are kept, once, in its directory's
# `listed`, its id in .slurm-listed-ids. awk prints the box's time, the kept lines of the
# jobs to show (each job's whole or not at all: a file cut short by a full disk lacks its
# `end`), then, on stderr, `todo NAME` for each of the others to show, for the loop below,
# which prints their lines on fd 4 and, for each not over, `SLURMID ARRAY NAME` (ARRAY 1 for
# an array job) on stdout: the jobs to ask the scheduler about.
exec 4>&1
fj_ids=$(
  # (The paths go in the environment: -v would take a backslash in them for an escape.)
  # The glob sorts the names, and so the jobs by start: the latest are the last ones.
  printf '%s\n' "$fj_jobs"/* | FJ_IDS=$fj_kept FJ_JOBS=$fj_jobs FJ_LAST=$fj_last awk '
    BEGIN { srand(); print "now " srand() }
    { sub(/.*\//, ""); if ($0 != "*") name[++n] = $0 }
    END {
      ids = ENVIRON["FJ_IDS"]; jobs = ENVIRON["FJ_JOBS"]; last = ENVIRON["FJ_LAST"] + 0
      while ((getline line < ids) > 0) over[line] = 1
      older = 0
      for (i = 1; i <= n; i++) {
        id = name[i]
        if (last > 0 && i <= n - last) {
          if (id in over) older++
          else todo[++t] = "todo-older " id
          continue
        }
        if (id in over) {
          f = jobs "/" id "/listed"; block = ""; whole = 0
          while ((getline line < f) > 0) { block = block line "\n"; whole = (line == "end") }
          close(f)
          if (whole) { printf "%s", block; continue }
        }
        todo[++t] = "todo " id
      }
      if (older) print "older " older
      fflush()
      for (i = 1; i <= t; i++) print todo[i] > "/dev/stderr"
    }' 2>&1 >&4 |
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
        fj_list_one "$fj_d" >&4
        if [ ! -f "$fj_d/final" ]; then
          fj_read "$fj_d/slurm"
          fj_a=0
          if [ -f "$fj_d/array" ]; then fj_a=1; fi
          printf '%s %s %s\n' "$fj_v" "$fj_a" "$fj_n"
        fi
      fi
    done
)
[ -n "$fj_ids" ] || exit 0
# JOBID|ARRAYJOBID|TASK|STATE|REASON|ELAPSED|LIMIT|LEFT|NODES|START
# (When it fails, `squeue-failed` and its first word on why: then nobody knows how the jobs
# still in the queue stand, and fenton says so rather than guess.)
if ! fj_q=$(squeue -h -t all -u "$(id -un)" -o '%A|%F|%K|%T|%r|%M|%l|%L|%N|%S' 2>&1); then
  printf 'squeue-failed %s\n' "$(printf '%s\n' "$fj_q" | grep . | head -n 1)"
  fj_q=''
fi
# One awk: the queue's lines for fenton's jobs (on fd 4), and the jobs to ask sacct about,
# for their exit codes (on stdout): those no longer in the queue, and the tasks that ended in
# it (by their own ids: `sacct -c` knows array tasks by no other).
fj_ask=$(printf '%s\n' "$fj_q" | FJ_IDS=$fj_ids awk -F'|' '
  BEGIN {
    n = split(ENVIRON["FJ_IDS"], list, "\n")
    for (i = 1; i <= n; i++) { split(list[i], w, " "); if (w[1] != "") want[w[1]] = 1 }
  }
  !($2 in want) && !($1 in want) { next }
  { print "squeue " $0 > "/dev/stderr"; seen[$2] = 1; seen[$1] = 1 }
  $4 !~ /^(PENDING|RUNNING|COMPLETING|CONFIGURING|SUSPENDED|REQUEUED|REQUEUE_.*|RESIZING|SIGNALING|STAGE_OUT|STOPPED)$/ { printf "%s,", $1 }
  END { for (id in want) if (!(id in seen)) printf "%s,", id }' 2>&4)
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
      arr = line; sub(/ .*/, "", arr); sub(/^[^ ]* /, "", line)
      if (sid != "" && arr == "0") dir[sid] = line
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
:
