# `fenton jobs`: the box's time, then for each job (oldest first) lines of `KEY VALUE` from
# `job ID` to `end`: what its files say, whether it is alive, its notification results and
# the last non-empty line of its log (after the last carriage return, as a terminal shows it),
# and a `damaged WHAT` line for each file that is not as its wrapper leaves it.
echo "now $(date +%s)"
[ -d "$fj_jobs" ] || exit 0
for fj_d in "$fj_jobs"/*/; do
  fj_d=${fj_d%/}
  [ -f "$fj_d/started" ] || continue
  echo "job ${fj_d##*/}"
  for fj_f in name cmd started ended exit killed notify pid; do
    if [ -f "$fj_d/$fj_f" ]; then
      fj_v=
      read -r fj_v < "$fj_d/$fj_f" || :
      printf '%s %s\n' "$fj_f" "$fj_v"
    fi
  done
  if [ ! -f "$fj_d/exit" ] && fj_alive "$fj_d"; then
    echo "alive 1"
  elif [ ! -f "$fj_d/exit" ] && [ -d "$fj_d/notify.d" ]; then
    # Lost: its wrapper came and went without recording the end, so no message will ever
    # be sent, and the tokens it kept have no reason to stay.
    fj_read "$fj_d/wrapper"
    if fj_pid_ok "$fj_v" && ! fj_live "$fj_v"; then rm -rf "$fj_d/notify.d"; fi
  fi
  # What is wrong with the job's files, a line each.
  if [ -f "$fj_d/exit" ]; then
    fj_read "$fj_d/exit"
    case $fj_v in
      [0-9] | [0-9][0-9] | [0-9][0-9][0-9]) ;;
      *) echo "damaged its exit file holds $(fj_shown "$fj_v"), not an exit status" ;;
    esac
  elif [ -f "$fj_d/pid" ]; then
    fj_read "$fj_d/pid"
    fj_pid_ok "$fj_v" || echo "damaged its pid file holds $(fj_shown "$fj_v"), not a process id"
  fi
  [ -f "$fj_d/log" ] || echo "damaged its log is missing"
  if [ -f "$fj_d/notify.result" ]; then
    # (Blank lines are what is left of the blanks it was made with where truncate is missing.)
    while IFS= read -r fj_v; do
      case $fj_v in *[![:space:]]*) printf 'result %s\n' "$fj_v" ;; esac
    done < "$fj_d/notify.result"
  fi
  tail -c 4096 "$fj_d/log" 2>/dev/null | awk '
    { n = split($0, parts, "\r"); for (i = 1; i <= n; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i] }
    END { print "last " last }'
  echo end
done
