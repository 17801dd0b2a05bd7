# `fenton jobs` on a Slurm profile: the login node's time, then for each of fenton's Slurm
# jobs a block of `KEY VALUE` lines from `job ID` to `end` (its files, and the last line of
# its log), then what the scheduler says about those not known to be over: `squeue LINE`
# (one query, all of the user's jobs, filtered here: squeue's own filters are not honoured
# by every version's --json, and one call costs less than one per job) and, for the jobs no
# longer in the queue or ended in it, `sacct LINE` (one query; `sacct -c`, the job
# completion file, where the cluster keeps no accounting database). A job sacct says is over
# has that line kept in its `final`, so it is not asked about again.
echo "now $(date +%s)"
[ -d "$fj_jobs" ] || exit 0
# The kept lines hold commands and log lines: as private as the jobs' own files.
umask 077
fj_index=$fj_jobs/.slurm-listed
fj_kept_ids=$fj_jobs/.slurm-listed-ids

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
  tail -c 4096 "$fj_l" 2>/dev/null | awk '
    { n = split($0, parts, "\r"); for (i = 1; i <= n; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i] }
    END { print "last " last }'
  echo end
}

# As list.sh does: a job that is over (its end kept in `final`, its message sent) cannot
# change, so its lines go once into .slurm-listed, its id into .slurm-listed-ids, and a long
# history costs one file and two awks. The ids of the jobs the scheduler is to be asked about
# come back on fd 3.
fj_names=$(ls -f "$fj_jobs" 2>/dev/null)
fj_kept=$(cat "$fj_kept_ids" 2>/dev/null)
printf '%s\n' "$fj_names" | awk -v kept="$fj_index" '
  { here[$0] = 1 }
  END {
    while ((getline line < kept) > 0) {
      if (line ~ /^job /) { block = ""; keep = (substr(line, 5) in here) }
      block = block line "\n"
      if (line == "end") { if (keep) printf "%s", block; block = ""; keep = 0 }
    }
  }'
exec 4>&1
fj_ids=$({ printf '%s\n' "$fj_kept"; echo /; printf '%s\n' "$fj_names"; } | awk '
  !names { if ($0 == "/") names = 1; else done[$0] = 1; next }
  !($0 in done) && $0 !~ /^\./' |
  while IFS= read -r fj_n; do
    fj_d=$fj_jobs/$fj_n
    [ -f "$fj_d/slurm" ] || continue
    if [ -f "$fj_d/final" ] && [ ! -d "$fj_d/notify.d" ]; then
      fj_block=$(fj_list_one "$fj_d")
      printf '%s\n' "$fj_block" >&4
      printf '%s\n' "$fj_block" >> "$fj_index" 2>/dev/null && printf '%s\n' "$fj_n" >> "$fj_kept_ids" 2>/dev/null
    else
      fj_list_one "$fj_d" >&4
      if [ ! -f "$fj_d/final" ]; then
        fj_read "$fj_d/slurm"
        printf ' %s' "$fj_v"
      fi
    fi
  done)
exec 4>&-
[ -n "$fj_ids" ] || exit 0
# JOBID|ARRAYJOBID|TASK|STATE|REASON|ELAPSED|LIMIT|LEFT|NODES|START
# (When it fails, `squeue-failed` and its first word on why: then nobody knows how the jobs
# still in the queue stand, and fenton says so rather than guess.)
if ! fj_q=$(squeue -h -t all -u "$(id -un)" -o '%A|%F|%K|%T|%r|%M|%l|%L|%N|%S' 2>&1); then
  printf 'squeue-failed %s\n' "$(printf '%s\n' "$fj_q" | grep . | head -n 1)"
  fj_q=
fi
printf '%s\n' "$fj_q" | awk -F'|' -v ids="$fj_ids" '
  BEGIN { n = split(ids, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1 }
  ($2 in want) || ($1 in want) { print "squeue " $0 }'
# The jobs to ask sacct about, for their exit codes: those no longer in the queue, and the
# tasks that ended in it (by their own ids: `sacct -c` knows array tasks by no other).
fj_ask=$(printf '%s\n' "$fj_q" | awk -F'|' -v ids="$fj_ids" '
  BEGIN { n = split(ids, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1 }
  !($2 in want) && !($1 in want) { next }
  { seen[$2] = 1; seen[$1] = 1 }
  $4 !~ /^(PENDING|RUNNING|COMPLETING|CONFIGURING|SUSPENDED|REQUEUED|REQUEUE_.*|RESIZING|SIGNALING|STAGE_OUT|STOPPED)$/ { printf "%s,", $1 }
  END { for (id in want) if (!(id in seen)) printf "%s,", id }')
fj_ask=${fj_ask%,}
[ -n "$fj_ask" ] || exit 0
# (No JobName: a name is the user's text, and the lines are read by their fields.)
fj_fmt=JobID,State,ExitCode,Elapsed,Start,End,NodeList
if ! fj_a=$(sacct -X -P -n -j "$fj_ask" -o "$fj_fmt" 2>&1) ||
  printf '%s' "$fj_a" | grep -q 'accounting storage is disabled'; then
  fj_a=$(sacct -c -P -n -j "$fj_ask" -o "$fj_fmt" 2>/dev/null)
fi
printf '%s\n' "$fj_a" | while IFS= read -r fj_line; do
  # A job's line starts with its id; anything else is sacct's own word (`sacct: error: ...`).
  case $fj_line in [0-9]*) ;; *) continue ;; esac
  printf 'sacct %s\n' "$fj_line"
  # A plain job (not an array: its tasks come under ids of their own) that is over: keep its
  # line. PREEMPTED may be requeued, so it is not kept.
  fj_i=${fj_line%%|*}
  case $fj_i in *[!0-9]* | '') continue ;; esac
  fj_s=$(printf '%s\n' "$fj_line" | cut -d'|' -f2)
  fj_s=${fj_s%% *}
  if ! fj_active "$fj_s" && [ "$fj_s" != PREEMPTED ]; then
    for fj_d in "$fj_jobs"/*/; do
      fj_read "${fj_d}slurm"
      if [ "$fj_v" = "$fj_i" ] && [ ! -f "${fj_d}array" ]; then
        printf '%s\n' "$fj_line" > "${fj_d}final" 2>/dev/null || :
      fi
    done
  fi
done
:
