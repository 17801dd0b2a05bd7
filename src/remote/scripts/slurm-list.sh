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
fj_ids=
for fj_d in "$fj_jobs"/*/; do
  [ -f "${fj_d}slurm" ] || continue
  fj_n=${fj_d%/}
  echo "job ${fj_n##*/}"
  for fj_f in name cmd started slurm array killed notify notify.last final; do
    if [ -f "$fj_n/$fj_f" ]; then
      fj_read "$fj_n/$fj_f"
      printf '%s %s\n' "$fj_f" "$fj_v"
    fi
  done
  if [ -f "$fj_n/notify.result" ]; then
    while IFS= read -r fj_v; do
      case $fj_v in *[![:space:]]*) printf 'result %s\n' "$fj_v" ;; esac
    done < "$fj_n/notify.result"
  fi
  fj_l=$fj_n/log
  if [ -f "$fj_n/array" ]; then
    # shellcheck disable=SC2012 # the newest task's log; fenton names them log.N
    fj_l=$(ls -t "$fj_n"/log.* 2>/dev/null | head -n 1)
  fi
  tail -c 4096 "$fj_l" 2>/dev/null | awk '
    { n = split($0, parts, "\r"); for (i = 1; i <= n; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i] }
    END { print "last " last }'
  echo end
  if [ ! -f "$fj_n/final" ]; then
    fj_read "$fj_n/slurm"
    fj_ids="$fj_ids $fj_v"
  fi
done
[ -n "$fj_ids" ] || exit 0
# JOBID|ARRAYJOBID|TASK|STATE|REASON|ELAPSED|LIMIT|LEFT|NODES|START
fj_q=$(squeue -h -t all -u "$(id -un)" -o '%A|%F|%K|%T|%r|%M|%l|%L|%N|%S' 2>/dev/null) ||
  echo "squeue-failed"
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
fj_fmt=JobID,JobName,State,ExitCode,Elapsed,Start,End,NodeList
if ! fj_a=$(sacct -X -P -n -j "$fj_ask" -o "$fj_fmt" 2>&1) ||
  printf '%s' "$fj_a" | grep -q 'accounting storage is disabled'; then
  fj_a=$(sacct -c -P -n -j "$fj_ask" -o "$fj_fmt" 2>/dev/null)
fi
printf '%s\n' "$fj_a" | while IFS= read -r fj_line; do
  case $fj_line in '' | *error*) continue ;; esac
  printf 'sacct %s\n' "$fj_line"
  # A plain job (not an array: its tasks come under ids of their own) that is over: keep its
  # line. PREEMPTED may be requeued, so it is not kept.
  fj_i=${fj_line%%|*}
  case $fj_i in *[!0-9]* | '') continue ;; esac
  fj_s=$(printf '%s\n' "$fj_line" | cut -d'|' -f3)
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
