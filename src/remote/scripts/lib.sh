# The start of every fenton job script: $1 is the profile's remote_dir; jobs live in
# $1/jobs/<id>/ (files: name cmd dir started pid wrapper ended exit log; env until the job
# starts; killed, notify, notify.result when those happened). The script's own arguments
# follow.
fj_root=$1
fj_jobs=$fj_root/jobs
shift

# fj_find JOB: fj_job becomes the directory of the job with that id, else of the latest job
# with that name; a job that does not exist ends the script with a message.
fj_find() {
  fj_job=
  case $1 in
    */* | .* | '') ;;
    *) if [ -d "$fj_jobs/$1" ]; then fj_job=$fj_jobs/$1; fi ;;
  esac
  if [ -z "$fj_job" ] && [ -d "$fj_jobs" ]; then
    for fj_d in "$fj_jobs"/*/; do
      fj_v=
      if [ -f "${fj_d}name" ]; then read -r fj_v < "${fj_d}name" || :; fi
      if [ "$fj_v" = "$1" ]; then fj_job=${fj_d%/}; fi
    done
  fi
  if [ -z "$fj_job" ]; then
    printf 'fenton: no job %s on the box (fenton jobs lists them)\n' "$1" >&2
    exit 1
  fi
}

# fj_read FILE: fj_v becomes its first line, or nothing (no subshell: list.sh reads many).
fj_read() {
  fj_v=
  if [ -f "$1" ]; then read -r fj_v < "$1" || :; fi
}

# fj_pid_ok TEXT: whether TEXT, read back from a job's file, is a process id fenton may
# signal: digits only, and never 1 (init; `kill -TERM -1` would reach every process).
fj_pid_ok() {
  case $1 in
    '' | 0* | *[!0-9]*) return 1 ;;
  esac
  [ "${#1}" -le 9 ] && [ "$1" -gt 1 ]
}

# fj_shown TEXT: TEXT read from a damaged file, safe to quote in a message.
fj_shown() {
  printf '"%s"' "$(printf '%s' "$1" | LC_ALL=C tr -cd 'A-Za-z0-9 ._:/-' | cut -c1-40)"
}

# fj_damaged WHAT: ends the script saying what is wrong with the job's files.
fj_damaged() {
  printf 'fenton: job %s is damaged: %s\n' "${fj_job##*/}" "$1" >&2
  exit 1
}

# fj_stat PID: fj_state, fj_ppid and fj_pgrp of that process; fails when there is none.
fj_stat() {
  fj_l=
  { read -r fj_l < "/proc/$1/stat"; } 2>/dev/null
  [ -n "$fj_l" ] || return 1
  # shellcheck disable=SC2086 # the fields after the command name, split into words
  set -- ${fj_l##*) }
  # shellcheck disable=SC2034 # not every script reads every field
  fj_state=$1 fj_ppid=$2 fj_pgrp=$3
}

# fj_group PGID: whether a process of that group is still alive. A zombie, which kill -0
# finds until its parent reaps it (never, under a container's init that reaps nothing), is
# not. (dash's kill takes no `--` before a negative pid: `kill -SIG -PGID`.)
fj_group() {
  kill -0 "-$1" 2>/dev/null || return 1
  [ -d /proc/self ] || return 0
  for fj_p in /proc/[0-9]*; do
    if fj_stat "${fj_p#/proc/}" && [ "$fj_pgrp" = "$1" ]; then
      case $fj_state in
        Z | X) ;;
        *) return 0 ;;
      esac
    fi
  done
  return 1
}

# fj_live PID: whether that process is alive (not a zombie).
fj_live() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -d /proc/self ] || return 0
  fj_stat "$1" && [ "$fj_state" != Z ] && [ "$fj_state" != X ]
}

# fj_alive DIR: whether the job's process group or its wrapper is still there.
fj_alive() {
  fj_read "$1/pid"
  if fj_pid_ok "$fj_v" && fj_group "$fj_v"; then return 0; fi
  fj_read "$1/wrapper"
  fj_pid_ok "$fj_v" && fj_live "$fj_v"
}

# fj_mkjob STAMP: makes the new job's directory, "$fj_jobs"/STAMP-NN, and fj_job becomes it.
# NN is one past the highest taken in that second, found by a glob: a burst of runs in one
# second (a script's loop) would otherwise try each taken id in turn, a program each (the
# first of a second is made at once: the glob reads the whole directory). Until
# then fj_job stays empty, so a script ended meanwhile removes no other job's directory.
fj_mkjob() {
  fj_i=0
  if [ ! -d "$fj_jobs/$1-01" ] && mkdir "$fj_jobs/$1-01" 2>/dev/null; then
    fj_job=$fj_jobs/$1-01
    return 0
  fi
  for fj_d in "$fj_jobs/$1"-*; do
    fj_v=${fj_d##*-}
    while :; do case $fj_v in 0?*) fj_v=${fj_v#0} ;; *) break ;; esac; done
    case $fj_v in '' | *[!0-9]* | ?????*) continue ;; esac
    if [ "$fj_v" -gt "$fj_i" ]; then fj_i=$fj_v; fi
  done
  while :; do
    fj_i=$((fj_i + 1))
    case $fj_i in ?) fj_c=$fj_jobs/$1-0$fj_i ;; *) fj_c=$fj_jobs/$1-$fj_i ;; esac
    if mkdir "$fj_c" 2>/dev/null; then
      fj_job=$fj_c
      return 0
    fi
    if [ ! -d "$fj_c" ] || [ "$fj_i" -ge 9999 ]; then fj_nospace "$fj_jobs"; fi
  done
}

# fj_kept_listing IDS LAST: the fixed part of a listing (list.sh, slurm-list.sh), in one awk:
# the box's time; the names in the jobs directory (a glob: no program, and never the hidden
# files); the ids of jobs over from the file IDS, read before their kept lines (a listing at
# the same time writes a job's lines first and its id after, so a job is in one or the
# other, or both, never in neither); the kept lines (`listed`) of those to show, each job's
# whole or not at all (a file cut short by a full disk lacks its `end`), on stdout; then,
# once those are written, `todo NAME` on stderr for each of the others to show, and
# `todo-older NAME` for one past the LAST latest (LAST above 0) that is not over; `older N`
# counts those over left out.
fj_kept_listing() {
  # (The paths go in the environment: -v would take a backslash in them for an escape.)
  # The glob sorts the names, and so the jobs by start: the latest are the last ones.
  printf '%s\n' "$fj_jobs"/* | FJ_IDS=$1 FJ_JOBS=$fj_jobs FJ_LAST=$2 awk '
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
    }'
}

# fj_nospace PATH: ends the script with the line for a write in PATH that failed: no space
# left (what a full disk looks like from here: under 1 MB free), or not writable.
fj_nospace() {
  fj_p=$1
  while [ ! -e "$fj_p" ] && [ "$fj_p" != / ] && [ "$fj_p" != . ]; do fj_p=$(dirname "$fj_p"); done
  fj_free=$(df -Pk "$fj_p" 2>/dev/null | awk 'NR == 2 { print $4 }')
  case $fj_free in
    '' | *[!0-9]*) fj_free= ;;
  esac
  if [ -n "$fj_free" ] && [ "$fj_free" -lt 1024 ]; then
    printf 'fenton: no space left on the box at %s (%s KB free): free some space there, or set remote_dir to a path on another disk\n' \
      "$1" "$fj_free" >&2
  else
    printf 'fenton: cannot write in %s on the box: check that it is a directory you may write to, or set remote_dir to one\n' \
      "$1" >&2
  fi
  exit 1
}

# fj_written DIR NAME BYTES...: the files fenton's appended lines wrote into DIR are whole;
# else the script ends as fj_nospace says.
fj_written() {
  fj_wd=$1
  shift
  while [ "$#" -ge 2 ]; do
    fj_s=$({ wc -c < "$fj_wd/$1"; } 2>/dev/null) || fj_s=-1
    [ "$((fj_s + 0))" = "$2" ] || fj_nospace "${fj_wd%/*}"
    shift 2
  done
}

# fj_nap SECONDS: a short pause (a whole second where sleep takes no fractions).
fj_nap() {
  sleep "$1" 2>/dev/null || sleep 1
}
