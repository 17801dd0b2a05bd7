# `fenton jobs --prune`: argument SECS. Removes the directories of jobs that are over (ended,
# their notifications sent, nothing of their process group alive) and ended at least SECS seconds ago; a
# running, lost or damaged job is never touched. Prints `pruned ID` for each, then `kept N`.
fj_age=$1
fj_now=$(date +%s)
fj_kept=0
if [ -d "$fj_jobs" ]; then
  for fj_d in "$fj_jobs"/*/; do
    fj_d=${fj_d%/}
    [ -d "$fj_d" ] || continue
    fj_read "$fj_d/ended"
    fj_ended=$fj_v
    case $fj_ended in
      '' | *[!0-9]*) fj_kept=$((fj_kept + 1)); continue ;;
    esac
    # Once `exit` is written and the notifications are sent, the wrapper has nothing left to
    # do (it may linger a moment as a zombie); what counts is the job's own process group.
    fj_read "$fj_d/pid"
    if [ $((fj_now - fj_ended)) -ge "$fj_age" ] && [ -f "$fj_d/exit" ] &&
      [ ! -d "$fj_d/notify.d" ] && ! { [ -n "$fj_v" ] && kill -0 "-$fj_v" 2>/dev/null; } &&
      rm -rf "$fj_d"; then
      echo "pruned ${fj_d##*/}"
    else
      fj_kept=$((fj_kept + 1))
    fi
  done
fi
echo "kept $fj_kept"
