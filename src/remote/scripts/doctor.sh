# fenton doctor's look at the box: POSIX sh read on stdin by `sh -s` after
# `set -- REMOTE_DIR JUPYTER_COMMAND JUPYTER_SETUP`. It changes nothing; it prints `key=value`
# lines that fenton turns into checks.
# Keys may repeat (one line per listening Jupyter server, per exposed file).

remote_dir=$1
jupyter_command=$2
jupyter_setup=$3

limited() {
  # Bounds a command that could hang (a broken driver, a slow Python start).
  if command -v timeout >/dev/null 2>&1; then timeout 30 "$@"; else "$@"; fi
}

first_line() { sed -n '1{s/[[:cntrl:]]//g;p;}'; }

# tmux: fenton tmux and fenton run live in it.
if command -v tmux >/dev/null 2>&1; then
  echo "tmux=$(tmux -V 2>&1 | first_line)"
else
  echo "tmux="
fi

# Jupyter: the profile's own command, after its setup line, as `fenton jupyter start` runs it.
# Both reach the inner sh in its environment: setup may export a secret, and `ps` shows
# every process's arguments to everyone on the box.
# shellcheck disable=SC2016 # expanded by the inner sh
out=$(FJ_SETUP=$jupyter_setup FJ_COMMAND=$jupyter_command \
  limited sh -c 'eval "$FJ_SETUP" >/dev/null 2>&1 && eval "$FJ_COMMAND --version"' 2>&1)
echo "jupyter_code=$?"
echo "jupyter_out=$(printf '%s\n' "$out" | first_line)"

# GPUs.
if command -v nvidia-smi >/dev/null 2>&1; then
  out=$(limited nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1)
  echo "gpu_code=$?"
  echo "gpu_count=$(printf '%s\n' "$out" | grep -c .)"
  echo "gpu_out=$(printf '%s\n' "$out" | first_line)"
else
  echo "gpu_code=127"
fi

# Notifications are sent from the box with curl or wget.
if command -v curl >/dev/null 2>&1; then echo "fetch=curl"
elif command -v wget >/dev/null 2>&1; then echo "fetch=wget"
else echo "fetch="; fi

# remote_dir: writable, or creatable under its nearest existing parent.
echo "remote_dir_path=$remote_dir"
if [ -d "$remote_dir" ]; then
  if [ -w "$remote_dir" ]; then echo "remote_dir=writable"; else echo "remote_dir=not-writable"; fi
else
  parent=$remote_dir
  while [ ! -e "$parent" ]; do parent=$(dirname "$parent"); done
  if [ -d "$parent" ] && [ -w "$parent" ]; then echo "remote_dir=creatable"
  else echo "remote_dir=not-creatable"; echo "remote_dir_blocker=$parent"; fi
fi

# Free space where the home directory is.
echo "home=$HOME"
echo "home_free_kb=$(df -Pk "$HOME" 2>/dev/null | awk 'NR == 2 { print $4 }')"

# The sshd serving this session: the topmost sshd among our ancestors, and its -f file.
sshd_words=
pid=$$
while [ "$pid" -gt 1 ] 2>/dev/null; do
  pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
  [ -n "$pid" ] || break
  words=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
  case $words in sshd*|*/sshd\ *|*/sshd) sshd_words=$words ;; esac
done
sshd_config=/etc/ssh/sshd_config
sshd_bin=
set -f
# shellcheck disable=SC2086 # the words of a command line, split on purpose
set -- $sshd_words
set +f
while [ $# -gt 0 ]; do
  case $1 in
    */sshd) [ -z "$sshd_bin" ] && sshd_bin=$1 ;;
    -f) [ $# -gt 1 ] && sshd_config=$2 ;;
    -f?*) sshd_config=${1#-f} ;;
  esac
  shift
done
[ -n "$sshd_bin" ] || sshd_bin=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
echo "sshd_config=$sshd_config"

# The settings that apply to this very connection, from `sshd -T` (root only, usually).
spec=
if [ -n "${SSH_CONNECTION:-}" ]; then
  # shellcheck disable=SC2086 # "client port server port"
  set -- $SSH_CONNECTION
  spec="user=$(id -un),host=$1,addr=$1,laddr=$3,lport=$4"
fi
if settings=$("$sshd_bin" -T ${spec:+-C "$spec"} -f "$sshd_config" 2>/dev/null) && [ -n "$settings" ]; then
  echo "sshd_source=sshd -T"
else
  # Not allowed: read the files, first value wins as in sshd, Match blocks left out.
  sshd_lines() {
    [ -r "$1" ] || return 0
    while read -r key value || [ -n "$key" ]; do
      case $key in
        ''|\#*) continue ;;
        [Mm][Aa][Tt][Cc][Hh]) return 1 ;;
        [Ii][Nn][Cc][Ll][Uu][Dd][Ee])
          case $value in /*) ;; *) value=/etc/ssh/$value ;; esac
          for included in $value; do sshd_lines "$included" || return 1; done ;;
        *) printf '%s %s\n' "$(printf '%s' "$key" | tr '[:upper:]' '[:lower:]')" "$value" ;;
      esac
    done <"$1"
  }
  settings=$(sshd_lines "$sshd_config" | awk '!seen[$1]++')
  if [ -r "$sshd_config" ]; then echo "sshd_source=files"; else echo "sshd_source=unreadable"; fi
fi
for key in passwordauthentication kbdinteractiveauthentication usepam permitrootlogin; do
  value=$(printf '%s\n' "$settings" | awk -v k="$key" 'tolower($1) == k { print tolower($2); exit }')
  echo "sshd_$key=$value"
done

# Jupyter servers listening on TCP: processes whose command line says jupyter, their sockets
# matched against /proc/net/tcp{,6} in LISTEN state.
inodes=
for file in /proc/[0-9]*/cmdline; do
  pid=${file#/proc/}; pid=${pid%/cmdline}
  [ "$pid" = $$ ] && continue
  grep -q -a jupyter "$file" 2>/dev/null || continue
  # shellcheck disable=SC2012 # fd names are numbers; the link targets are what we read
  for inode in $(ls -l "/proc/$pid/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p'); do
    inodes="$inodes $inode:$pid"
  done
  # A token given empty on the command line turns authentication off.
  if tr '\0' '\n' <"$file" 2>/dev/null | grep -q -E '^--[A-Za-z]+App\.token=$|^--IdentityProvider\.token=$'; then
    echo "jupyter_open=$pid command line sets an empty token"
  fi
done
if [ -n "$inodes" ]; then
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v inodes="$inodes" '
    function hex(s,   i, n) {
      n = 0
      for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1
      return n
    }
    BEGIN { n = split(inodes, list, " "); for (i = 1; i <= n; i++) { split(list[i], p, ":"); pid[p[1]] = p[2] } }
    $4 == "0A" && ($10 in pid) {
      split($2, a, ":"); ip = a[1]
      if (length(ip) == 8) {
        addr = hex(substr(ip, 7, 2)) "." hex(substr(ip, 5, 2)) "." hex(substr(ip, 3, 2)) "." hex(substr(ip, 1, 2))
        loop = substr(ip, 7, 2) == "7F"
      } else {
        loop = ip == "00000000000000000000000001000000" || (substr(ip, 1, 24) == "0000000000000000FFFF0000" && substr(ip, 31, 2) == "7F")
        addr = ip ~ /^0+$/ ? "::" : (loop ? "::1" : "ipv6:" ip)
      }
      print "jupyter_listen=" pid[$10] " " (loop ? "loopback" : "open") " " addr " " hex(a[2])
    }'
fi

# Jupyter servers that say (in their runtime files) they have neither token nor password.
runtime=${JUPYTER_RUNTIME_DIR:-${JUPYTER_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter}/runtime}
for file in "$runtime"/jpserver-*.json "$runtime"/nbserver-*.json; do
  [ -f "$file" ] || continue
  tr -d ' \n' <"$file" | grep -q '"token":""' || continue
  tr -d ' \n' <"$file" | grep -q '"password":false' || continue
  pid=$(tr -d ' \n' <"$file" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
  [ -d "/proc/${pid:-none}" ] || continue
  echo "jupyter_open=$pid $file: no token and no password"
done

# Files holding Jupyter tokens or password hashes that others may read. A file is exposed
# only when others (or the group) may read it and pass through every directory above it.
has_mode() { [ -n "$(find "$1" -prune -perm "-$2" 2>/dev/null)" ]; }
reachable() {
  case $1 in /*) path=$1 ;; *) path=$PWD/$1 ;; esac
  up=${path%/*}
  while [ -n "$up" ]; do
    has_mode "$up" "$2" || return 1
    up=${up%/*}
  done
  has_mode / "$2"
}
exposed() {
  while IFS= read -r file; do
    if { has_mode "$file" 004 && reachable "$file" 001; } ||
      { has_mode "$file" 040 && reachable "$file" 010; }; then
      printf 'exposed=%s\n' "$file"
    fi
  done
}
for dir in "$remote_dir/jupyter" "$runtime" "$HOME/.jupyter"; do
  [ -d "$dir" ] || continue
  find "$dir" -maxdepth 2 -type f \( -perm -004 -o -perm -040 \) -print 2>/dev/null | exposed
done
[ -d "$remote_dir" ] && find "$remote_dir" -maxdepth 3 -type f -name '*token*' \
  \( -perm -004 -o -perm -040 \) -print 2>/dev/null | exposed
# fenton monitor's recorder: running, gone (its pid file outlived it) or none.
m=$remote_dir/monitor
if [ -r "$m/pid" ]; then
  read -r mpid <"$m/pid"
  case $mpid in '' | 0 | 1 | *[!0-9]*) echo "monitor=gone" ;; *) if kill -0 "$mpid" 2>/dev/null; then echo "monitor=running"; else echo "monitor=gone"; fi ;; esac
  [ -r "$m/since" ] && echo "monitor_since=$(cat "$m/since")"
  echo "monitor_now=$(date +%s)"
else
  echo "monitor=none"
fi
echo "done=1"
