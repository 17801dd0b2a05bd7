# `fenton jobs [LAST]`: the box's time, then for each job lines of `KEY VALUE` from `job ID`
# to `end`: what its files say, whether it is alive, its notification results, the last
# non-empty line of its log (after the last carriage return, as a terminal shows it), and a
# `damaged WHAT` line for each file that is not as its wrapper leaves it.
# A job that is over (ended, its notifications sent) cannot change: its lines are kept, once,
# in its directory's `listed` (its id goes into jobs/.listed-ids). Jobs come in no set order, and one may come
# twice (the later lines are the newer); the lines of a job whose directory is gone are left
# out. With LAST (a number above 0), only the LAST latest jobs and those not over yet come,
# and `older N` lines count the rest.
fj_last=${1:-0}
case $fj_last in '' | *[!0-9]*) fj_last=0 ;; esac
[ -d "$fj_jobs" ] || { echo "now $(date +%s)"; exit 0; }
# The kept lines hold commands and log lines: as private as the jobs' own files.
umask 077
fj_ids=$fj_jobs/.listed-ids

fj_list_one() {
  echo "job ${1##*/}"
  for fj_f in name cmd started ended exit killed notify notify.last pid; do
    if [ -f "$1/$fj_f" ]; then
      fj_v=
      read -r fj_v < "$1/$fj_f" || :
      printf '%s %s\n' "$fj_f" "$fj_v"
    fi
  done
  if [ ! -f "$1/exit" ] && fj_alive "$1"; then
    echo "alive 1"
  elif [ ! -f "$1/exit" ] && [ -d "$1/notify.d" ]; then
    # Lost: its wrapper came and went without recording the end, so no message will ever
    # be sent, and the tokens it kept have no reason to stay.
    fj_read "$1/wrapper"
    if fj_pid_ok "$fj_v" && ! fj_live "$fj_v"; then rm -rf "$1/notify.d"; fi
  fi
  # What is wrong with the job's files, a line each.
  if [ -f "$1/exit" ]; then
    fj_read "$1/exit"
    case $fj_v in
      [0-9] | [0-9][0-9] | [0-9][0-9][0-9]) ;;
      *) echo "damaged its exit file holds $(fj_shown "$fj_v"), not an exit status" ;;
    esac
  elif [ -f "$1/pid" ]; then
    fj_read "$1/pid"
    fj_pid_ok "$fj_v" || echo "damaged its pid file holds $(fj_shown "$fj_v"), not a process id"
  fi
  [ -f "$1/log" ] || echo "damaged its log is missing"
  if [ -f "$1/notify.result" ]; then
    # (Blank lines are what is left of the blanks it was made with where truncate is missing.)
    while IFS= read -r fj_v; do
      case $fj_v in *[![:space:]]*) printf 'result %s\n' "$fj_v" ;; esac
    done < "$1/notify.result"
  fi
  tail -c 4096 "$1/log" 2>/dev/null | awk '
    { n = split($0, parts, "\r"); for (i = 1; i <= n; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i] }
    END { print "last " last }'
  echo end
}

# fj_kept_listing does the listing's fixed part, so a long history costs no look into old
# jobs' files but one, and one program started, not five; the others to show come on its
# stderr, as `todo NAME`, for the loop below: jobs new, running, over since the last listing
# (then kept from now on), or whose kept lines are missing. What else awk says on stderr
# goes on to stderr.
[ -f "$fj_jobs/.listed" ] && rm -f "$fj_jobs/.listed" # (all jobs' kept lines in one file, once)
{
  fj_kept_listing "$fj_ids" "$fj_last" 2>&1 >&3 3>&- |
    while IFS= read -r fj_n; do
      # (todo-older: one past the LAST latest, shown only if it is not over.)
      case $fj_n in
        "todo "*) fj_n=${fj_n#todo } fj_older= ;;
        "todo-older "*) fj_n=${fj_n#todo-older } fj_older=1 ;;
        *)
          printf '%s\n' "$fj_n" >&2
          continue
          ;;
      esac
      fj_d=$fj_jobs/$fj_n
      [ -f "$fj_d/started" ] || continue
      if [ -f "$fj_d/exit" ] && [ ! -d "$fj_d/notify.d" ]; then
        fj_block=$(fj_list_one "$fj_d")
        if [ -n "$fj_older" ]; then echo "older 1"; else printf '%s\n' "$fj_block"; fi
        printf '%s\n' "$fj_block" > "$fj_d/listed" 2>/dev/null && printf '%s\n' "$fj_n" >> "$fj_ids" 2>/dev/null
      else
        fj_list_one "$fj_d"
      fi
    done 3>&-
} 3>&1
:
