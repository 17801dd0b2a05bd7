# Jupyter: `fenton jupyter start` from nothing to a URL that answers here, against the same
# Jupyter started directly on the box and polled there; and `start` when one already runs.
# Needs the jupyter-server venv that scripts/test installs (target/jupyter-venv).

jupyter_bin=$root/target/jupyter-venv/bin/jupyter
if [ ! -x "$jupyter_bin" ]; then
  echo "skipped: $jupyter_bin is missing (scripts/test installs it)"
  return 0
fi
command -v curl >/dev/null || { echo "skipped: curl is missing"; return 0; }

jw=$BENCH_WORK/jupyter
mkdir -p "$jw/nb" "$jw/home"
jport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
lport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
jsock=fenton-bench-jupyter-$$
jenv="JUPYTER_RUNTIME_DIR=$jw/home/run JUPYTER_DATA_DIR=$jw/home/data JUPYTER_CONFIG_DIR=$jw/home/config"
jconfig=$jw/config.toml
cat > "$jconfig" <<TOML
default = "bench"
[profile.bench]
host = "$HOST"
ssh_config = "$SSH_CONFIG"
remote_dir = "$BENCH_WORK/remote"
[profile.bench.tmux]
socket = "$jsock"
[profile.bench.jupyter]
command = "$jupyter_bin server"
setup = "export $jenv"
dir = "$jw/nb"
remote_port = $jport
local_port = $lport
TOML
chmod 600 "$jconfig"
jf() { FENTON_CONFIG=$jconfig "$FENTON" -q "$@"; }
cleanups+=("FENTON_CONFIG='$jconfig' '$FENTON' -q jupyter stop; tmux -L '$jsock' kill-server 2>/dev/null")
jf connect

now() { date +%s.%N; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
runs=5

# The same server, started on the box by hand and polled there until it answers.
printf '%s' bench-token > "$jw/token"
chmod 600 "$jw/token"
direct=()
for _ in $(seq $runs); do
  t0=$(now)
  # shellcheck disable=SC2086 # $jenv is several NAME=VALUE words
  (cd "$jw/nb" && exec env $jenv JUPYTER_TOKEN_FILE="$jw/token" "$jupyter_bin" server \
    --ServerApp.ip=127.0.0.1 --ServerApp.port="$jport" --ServerApp.port_retries=0 \
    --ServerApp.open_browser=False --ServerApp.allow_root=True >"$jw/direct.log" 2>&1) &
  pid=$!
  until curl -sf -o /dev/null -H 'Authorization: token bench-token' "http://127.0.0.1:$jport/api/status"; do
    kill -0 "$pid" 2>/dev/null || { echo "jupyter did not start:"; cat "$jw/direct.log"; return 1; }
    sleep 0.02
  done
  t1=$(now)
  direct+=("$(python3 -c "print($t1 - $t0)")")
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
done

cold=()
for _ in $(seq $runs); do
  jf jupyter stop
  t0=$(now)
  jf jupyter start --no-browser >/dev/null
  t1=$(now)
  cold+=("$(python3 -c "print($t1 - $t0)")")
done
direct_s=$(median "${direct[@]}")
cold_s=$(median "${cold[@]}")
warm_s=$(hf jupyter-warm "FENTON_CONFIG=$jconfig $FENTON -q jupyter start --no-browser")
jf jupyter stop

echo "jupyter started directly, until it answers: $(ms "$direct_s") ms  (median of $runs)"
echo "fenton jupyter start, until it answers:    $(ms "$cold_s") ms  (median of $runs)"
echo "overhead of fenton:                         $(ms "$(python3 -c "print($cold_s - $direct_s)")") ms  (goal <= 500), ratio $(ratio "$cold_s" "$direct_s")"
echo "fenton jupyter start, already running:      $(ms "$warm_s") ms  (goal <= 1000)"
