# fenton's job wrapper. `fenton run` writes it into the job's directory and starts it there,
# in a window of the profile's tmux session (or under setsid where tmux is missing):
#
#   sh ./job.sh run     runs the job (the words in ./cmd, in the directory in ./dir, with the
#                       environment in ./env), records pid, end time and exit status, then
#                       sends the notifications configured in ./notify.d and deletes them
#   sh ./job.sh test    sends a test message on every channel in ./notify.d, one result a line
#
# The job gets a session (and so a process group) of its own: `fenton kill` signals that
# group and never this wrapper, which stays to record how the job ended. Every name here
# starts with fj_ because the job's environment is sourced into this shell.
umask 077
fj_job=$(pwd)
fj_n=$fj_job/notify.d

# How long SECONDS is, for people: 45s, 12m03s, 3h04m, 2d03h.
fj_human() {
  fj_s=$1
  if [ "$fj_s" -lt 60 ]; then printf '%ss' "$fj_s"
  elif [ "$fj_s" -lt 3600 ]; then printf '%dm%02ds' $((fj_s / 60)) $((fj_s % 60))
  elif [ "$fj_s" -lt 86400 ]; then printf '%dh%02dm' $((fj_s / 3600)) $((fj_s % 3600 / 60))
  else printf '%dd%02dh' $((fj_s / 86400)) $((fj_s % 86400 / 3600))
  fi
}

# stdin as one JSON string literal: control characters dropped, lines joined with \n.
fj_json() {
  fj_tab=$(printf '\t')
  LC_ALL=C tr -d '\000-\010\013-\037\177' |
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$fj_tab/\\\\t/g" |
    awk 'BEGIN { printf "\"" } NR > 1 { printf "%s", "\\n" } { printf "%s", $0 } END { printf "\"" }'
}

# Valid UTF-8 only (a tail cut in the middle of a character would make services refuse it).
fj_utf8() {
  if command -v iconv >/dev/null 2>&1; then iconv -f UTF-8 -t UTF-8 -c 2>/dev/null; else cat; fi
}

fj_curl_why() {
  case $1 in
    6) echo ": cannot resolve the host" ;;
    7) echo ": cannot connect" ;;
    28) echo ": timed out" ;;
    35 | 51 | 58 | 60) echo ": TLS failed" ;;
  esac
}

# fj_send CHANNEL BODY_FILE HEADER_FILE: POSTs the body with the channel's URL and secret
# headers (read from files, never put on a command line) plus the given header lines.
# Prints "CHANNEL ok ..." or "CHANNEL failed ...".
fj_send() {
  fj_ch=$1 fj_body=$2 fj_hdrs=$3
  if command -v curl >/dev/null 2>&1; then
    {
      cat "$fj_n/$fj_ch.curl"
      while IFS= read -r fj_h; do printf 'header = "%s"\n' "$fj_h"; done < "$fj_hdrs"
    } > "$fj_n/send.curl"
    fj_code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X POST \
      --data-binary @"$fj_body" -K "$fj_n/send.curl" 2>/dev/null)
    fj_rc=$?
    if [ "$fj_rc" -ne 0 ]; then
      echo "$fj_ch failed: curl exit $fj_rc$(fj_curl_why "$fj_rc")"
    else
      case $fj_code in
        2??) echo "$fj_ch ok: HTTP $fj_code" ;;
        *) echo "$fj_ch failed: HTTP $fj_code" ;;
      esac
    fi
  elif command -v wget >/dev/null 2>&1; then
    {
      cat "$fj_n/$fj_ch.wgetrc"
      while IFS= read -r fj_h; do printf 'header = %s\n' "$fj_h"; done < "$fj_hdrs"
    } > "$fj_n/send.wgetrc"
    wget -q -O /dev/null -T 30 -t 1 --config="$fj_n/send.wgetrc" \
      --post-file="$fj_body" -i "$fj_n/$fj_ch.url" 2>/dev/null
    fj_rc=$?
    case $fj_rc in
      0) echo "$fj_ch ok: sent with wget" ;;
      8) echo "$fj_ch failed: the server answered with an error (wget exit 8)" ;;
      4) echo "$fj_ch failed: network failure (wget exit 4)" ;;
      *) echo "$fj_ch failed: wget exit $fj_rc" ;;
    esac
  else
    echo "$fj_ch failed: neither curl nor wget is installed on the box"
  fi
}

# fj_notify TITLE TEXT_FILE STATE EXIT DURATION_S: one message on every configured channel.
fj_notify() {
  fj_title=$1 fj_text=$2
  fj_jtext=$(fj_json < "$fj_text")
  if [ -f "$fj_n/telegram.curl" ]; then
    printf '{"chat_id":%s,"text":%s}' "$(cat "$fj_n/telegram.chat")" "$fj_jtext" > "$fj_n/body"
    echo 'Content-Type: application/json' > "$fj_n/headers"
    fj_send telegram "$fj_n/body" "$fj_n/headers"
  fi
  if [ -f "$fj_n/ntfy.curl" ]; then
    case $3 in
      succeeded) fj_tags=white_check_mark fj_prio=default ;;
      test) fj_tags=bell fj_prio=default ;;
      *) fj_tags=x fj_prio=high ;;
    esac
    {
      echo 'Content-Type: text/plain; charset=utf-8'
      echo "Title: $fj_title"
      echo "Priority: $fj_prio"
      echo "Tags: fenton,$fj_tags"
    } > "$fj_n/headers"
    fj_send ntfy "$fj_text" "$fj_n/headers"
  fi
  if [ -f "$fj_n/webhook.curl" ]; then
    fj_tail=$(fj_json < "$fj_n/tail")
    printf '{"source":"fenton","host":%s,"id":%s,"name":%s,"state":"%s","exit":%s,"duration_s":%s,"duration":"%s","title":%s,"text":%s,"log_tail":%s}' \
      "$(printf '%s' "$fj_host" | fj_json)" "$(printf '%s' "$fj_id" | fj_json)" \
      "$(printf '%s' "$fj_name" | fj_json)" "$3" "${4:-null}" "${5:-null}" \
      "$(fj_human "${5:-0}")" "$(printf '%s' "$fj_title" | fj_json)" "$fj_jtext" "$fj_tail" \
      > "$fj_n/body"
    echo 'Content-Type: application/json' > "$fj_n/headers"
    fj_send webhook "$fj_n/body" "$fj_n/headers"
  fi
}

# The host name as a header may carry it: letters, digits, '.', '-'.
fj_hostname() {
  { hostname 2>/dev/null || uname -n; } | LC_ALL=C tr -cd 'A-Za-z0-9.-'
}

fj_run() {
  echo $$ > "$fj_job/wrapper"
  # shellcheck source=/dev/null
  if [ -f "$fj_job/env" ]; then . "$fj_job/env" && rm -f "$fj_job/env"; fi
  fj_cmd=$(cat "$fj_job/cmd")
  # The job gets the umask of the session that started it (fenton's own files are private).
  fj_umask=022
  if [ -f "$fj_job/umask" ]; then read -r fj_umask < "$fj_job/umask" || :; fi
  # The directory as written, less the newline after it (it may end in newlines of its own).
  fj_dir=$(cat "$fj_job/dir" && echo .)
  fj_dir=${fj_dir%?.}
  if ! cd "$fj_dir" 2>/dev/null; then
    echo "fenton: cannot enter $fj_dir" >> "$fj_job/log"
    date +%s > "$fj_job/ended" && echo 1 > "$fj_job/exit.tmp" && mv -f "$fj_job/exit.tmp" "$fj_job/exit"
    rm -rf "$fj_n"
    exit 1
  fi
  printf 'fenton job %s (%s): its output is in %s/log\n' "${fj_job##*/}" "$(cat "$fj_job/name")" "$fj_job"
  # A window closing (HUP) or a ^C typed in it (INT) must not end the wrapper: it records
  # how the job ended. A handler, not '' (ignored), because the job runs in the foreground
  # and so starts with the default handlers: started in the background by a shell without
  # job control, it would have INT and QUIT ignored for good (no KeyboardInterrupt).
  trap : HUP INT
  # A foreground child of this shell is no process-group leader, so setsid makes it a
  # session and group leader without forking: its $$ is the job's process group.
  # shellcheck disable=SC2016 # expanded by the job's own sh
  setsid sh -c 'umask "$3"; echo $$ > "$1/pid.tmp" && mv -f "$1/pid.tmp" "$1/pid" && exec sh -c "$2"' \
    fj "$fj_job" "$fj_cmd" "$fj_umask" </dev/null >>"$fj_job/log" 2>&1
  fj_exit=$?
  cd "$fj_job" || exit 1
  date +%s > ended.tmp && mv -f ended.tmp ended
  echo "$fj_exit" > exit.tmp && mv -f exit.tmp exit
  [ -d "$fj_n" ] || exit 0

  fj_id=${fj_job##*/}
  fj_name=$(cat name)
  fj_started=$(cat started)
  fj_secs=$(($(cat ended) - fj_started))
  fj_host=$(fj_hostname)
  if [ "$fj_exit" -eq 0 ]; then
    fj_state=succeeded fj_what=succeeded
  elif [ -f killed ]; then
    fj_state=killed fj_what="was killed"
  else
    fj_state=failed fj_what="failed (exit $fj_exit)"
  fi
  tail -c 65536 log 2>/dev/null | tr '\r' '\n' | grep -v '^[[:space:]]*$' | tail -n 10 |
    tail -c 3000 | fj_utf8 > "$fj_n/tail"
  {
    echo "$fj_name $fj_what on $fj_host"
    echo "job $fj_id, exit status $fj_exit, ran $(fj_human "$fj_secs") ($fj_secs s)"
    if [ -s "$fj_n/tail" ]; then
      echo "last lines of the log:"
      cat "$fj_n/tail"
    else
      echo "the log is empty"
    fi
  } > "$fj_n/text"
  fj_notify "$fj_name $fj_what on $fj_host" "$fj_n/text" "$fj_state" "$fj_exit" "$fj_secs" \
    > notify.result.tmp
  mv -f notify.result.tmp notify.result
  rm -rf "$fj_n"
}

fj_test() {
  fj_id=test fj_name=test
  fj_host=$(fj_hostname)
  printf 'fenton on %s can reach you: this is a test message.\n' "$fj_host" > "$fj_n/text"
  : > "$fj_n/tail"
  fj_notify "fenton test from $fj_host" "$fj_n/text" test "" ""
}

case ${1:-} in
  run) fj_run ;;
  test) fj_test ;;
  *) echo "usage: sh job.sh run|test (in the job's directory)" >&2; exit 2 ;;
esac
